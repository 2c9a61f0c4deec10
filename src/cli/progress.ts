/**
 * Progress output: a bar redrawn in place on a terminal, one plain line every few seconds
 * otherwise (logs of a Job or CI stay readable). Always on stderr: stdout carries results (--json).
 */
import { formatBytes, type Progress } from '../engine/progress.js';

export { formatBytes };

export function progressPrinter(label: string, stream: NodeJS.WriteStream = process.stderr, intervalMs = 5000): { update(p: Progress): void; done(): void } {
  const started = Date.now();
  const tty = Boolean(stream.isTTY);
  let last = 0;
  let latest: Progress | undefined;
  const line = (p: Progress): string => {
    const secs = Math.max((Date.now() - started) / 1000, 0.001);
    const pct = p.bytesTotal > 0 ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : 100;
    return `${label} ${p.phase}: ${p.filesDone}/${p.filesTotal} files, ${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)} (${pct}%), ${formatBytes(p.bytesDone / secs)}/s`;
  };
  return {
    update(p) {
      latest = p;
      const now = Date.now();
      if (tty) {
        if (now - last < 100) return;
        last = now;
        const width = 24;
        const filled = p.bytesTotal > 0 ? Math.round((width * p.bytesDone) / p.bytesTotal) : width;
        stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${line(p)}\x1b[K`);
      } else if (now - last >= intervalMs) {
        last = now;
        stream.write(`${line(p)}\n`);
      }
    },
    done() {
      if (tty && latest) stream.write(`\r${line(latest)}\x1b[K\n`);
    },
  };
}
