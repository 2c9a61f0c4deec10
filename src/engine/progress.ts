/** Progress of a backup or restore, reported to the CLI's bar or the plugin's periodic log line. */
export interface Progress {
  phase: 'copying' | 'uploading' | 'checking' | 'downloading' | 'done';
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
  bytesUploaded: number;
  bytesCopied: number;
}

export type ProgressListener = (progress: Progress) => void;

const MiB = 1024 * 1024;

/** Bytes for people: `512 B`, `1.5 KiB`, `12.3 MiB`, `1.02 GiB`. */
export function formatBytes(n: number): string {
  if (n >= 1024 * MiB) return `${(n / (1024 * MiB)).toFixed(2)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${Math.round(n)} B`; // rates are fractional
}
