/**
 * Progress of a backup or restore, reported to the CLI's bar or the plugin's periodic log line:
 * whenever a file is done or the phase changes, and every PROGRESS_TICK_MS besides (heartbeat), so
 * that a listener printing every few seconds has a line to print while one large file transfers
 * for minutes, or while the database counts.
 */
export interface Progress {
  /** `counting`: every file is written and checked; the backup waits for the database's counts. */
  phase: 'copying' | 'uploading' | 'checking' | 'counting' | 'downloading' | 'done';
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
  bytesUploaded: number;
  bytesCopied: number;
  /** Bytes of files an interrupted earlier run of the backup had finished, found in place (no transfer). */
  bytesResumed?: number;
}

export type ProgressListener = (progress: Progress) => void;

/** How often a running backup or restore reports even when no file finished. */
export const PROGRESS_TICK_MS = 1000;

/** Calls `report` every PROGRESS_TICK_MS until the returned function is called. */
export function heartbeat(report: () => void): () => void {
  const timer = setInterval(report, PROGRESS_TICK_MS);
  // A heartbeat never keeps the process alive by itself.
  timer.unref();
  return () => clearInterval(timer);
}

/** Bytes that moved over the network (uploaded or downloaded), as opposed to copied server-side or found in place. */
export const bytesMoved = (p: Progress): number => p.bytesDone - p.bytesCopied - (p.bytesResumed ?? 0);

/**
 * The transfer rate since the previous call, for periodic lines: a rate averaged since the start
 * would hide a transfer that stalled. The first call gives the rate since `started`.
 */
export function recentRate(started = Date.now()): (p: Progress) => number {
  let at = started;
  let moved = 0;
  return (p) => {
    const now = Date.now();
    const rate = (bytesMoved(p) - moved) / Math.max((now - at) / 1000, 0.001);
    at = now;
    moved = bytesMoved(p);
    return rate;
  };
}

const MiB = 1024 * 1024;

/** Bytes for people: `512 B`, `1.5 KiB`, `12.3 MiB`, `1.02 GiB`. */
export function formatBytes(n: number): string {
  if (n >= 1024 * MiB) return `${(n / (1024 * MiB)).toFixed(2)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${Math.round(n)} B`; // rates are fractional
}
