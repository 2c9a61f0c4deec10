/**
 * Progress output: a bar redrawn in place on a terminal, one plain line every few seconds
 * otherwise (logs of a Job or CI stay readable). Always on stderr: stdout carries results (--json).
 */
import { bytesMoved, formatBytes, recentRate, type Progress } from '../engine/progress.js';

export { formatBytes };

/**
 * The engine reports every second as well as per file, so a plain line comes every `intervalMs`
 * even while one large file transfers. The bar shows the average rate of the bytes that moved
 * (copies take no bandwidth); plain lines the rate since the line before, so a stall shows.
 */
export function progressPrinter(label: string, stream: NodeJS.WriteStream = process.stderr, intervalMs = 5000): { update(p: Progress): void; done(): void } {
  const started = Date.now();
  const tty = Boolean(stream.isTTY);
  let last = 0;
  let latest: Progress | undefined;
  const recent = recentRate(started);
  const line = (p: Progress, rate: number): string => {
    const pct = p.bytesTotal > 0 ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : 100;
    return `${label} ${p.phase}: ${p.filesDone}/${p.filesTotal} files, ${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)} (${pct}%), ${formatBytes(rate)}/s`;
  };
  const average = (p: Progress) => bytesMoved(p) / Math.max((Date.now() - started) / 1000, 0.001);
  return {
    update(p) {
      latest = p;
      const now = Date.now();
      if (tty) {
        if (now - last < 100) return;
        last = now;
        const width = 24;
        const filled = p.bytesTotal > 0 ? Math.round((width * p.bytesDone) / p.bytesTotal) : width;
        stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${line(p, average(p))}\x1b[K`);
      } else if (now - last >= intervalMs) {
        last = now;
        stream.write(`${line(p, recent(p))}\n`);
      }
    },
    done() {
      if (tty && latest) stream.write(`\r${line(latest, average(latest))}\x1b[K\n`);
    },
  };
}
