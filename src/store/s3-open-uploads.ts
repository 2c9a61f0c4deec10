/**
 * The multipart uploads a store has started and not yet completed or aborted. A process that is
 * interrupted (the CLI on Ctrl-C or SIGTERM) aborts them before it exits: otherwise their parts
 * stay in the bucket, billed and absent from every listing, until a lifecycle rule removes them.
 */
export interface OpenUpload {
  Key: string;
  UploadId: string;
}

export class OpenUploads {
  private readonly open = new Set<Promise<OpenUpload | undefined>>();

  /**
   * Registers an upload from the moment its creation is asked for (an interrupt may land before the
   * server has answered); the returned function forgets it, once it is completed or aborted.
   */
  track(Key: string, created: Promise<string>): () => void {
    const entry = created.then(
      (UploadId) => ({ Key, UploadId }),
      () => undefined,
    );
    this.open.add(entry);
    return () => this.open.delete(entry);
  }

  /** Every upload still open, including those whose creation was under way; forgets them. */
  async take(): Promise<OpenUpload[]> {
    const entries = [...this.open];
    this.open.clear();
    return (await Promise.all(entries)).filter((u): u is OpenUpload => u !== undefined);
  }
}
