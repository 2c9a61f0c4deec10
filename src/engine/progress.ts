/** Progress of a backup or restore, reported to the CLI's bar or the plugin's periodic log line. */
export interface Progress {
  phase: 'copying' | 'uploading' | 'checking' | 'downloading' | 'verifying' | 'done';
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
  bytesUploaded: number;
  bytesCopied: number;
}

export type ProgressListener = (progress: Progress) => void;
