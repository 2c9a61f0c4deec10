/** How many idle own buffers are kept at most beyond the uploads running. */
const MAX_IDLE_OWN = 4;

/**
 * A store-wide pool of part buffers for multipart uploads of streams, so that the memory of all
 * parallel uploads together stays within a budget, and buffers are reused instead of becoming
 * garbage at the rate of the upload (which is what makes RSS grow far past the live data when
 * every part is a fresh allocation).
 *
 * Non-blocking by design: every upload has one buffer of its own (`takeOwn`, outside the budget,
 * handed on to the next upload once its body is read), takes a pooled buffer only when one is free,
 * and otherwise waits for one of its own parts to finish; it never waits for another upload, so
 * uploads whose sources depend on each other (one tar stream feeding several files) cannot deadlock.
 */
export class PartBufferPool {
  private readonly free: Buffer[] = [];
  /** Uploads' own first buffers, handed back when an upload has read its whole body. */
  private readonly freeOwn: Buffer[] = [];
  private readonly ours = new WeakSet<Buffer>();
  private allocated = 0;
  private users = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  /**
   * @param idleMs how long buffers are kept once no upload uses the pool (0: let go at once). A
   *   backup of many small files has moments without any multipart upload; letting the buffers go
   *   each time only turns them into garbage (collected late, as external memory) and allocates
   *   fresh ones (page faults) for the next large file.
   */
  constructor(
    readonly bufferSize: number,
    readonly maxBuffers: number,
    readonly idleMs = 0,
  ) {}

  /** An upload starts using the pool. */
  enter(): void {
    this.users++;
    if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
  }

  /** An upload is done; when none is left (for `idleMs`), the buffers are let go. */
  leave(): void {
    this.users--;
    if (this.users > 0) return;
    if (this.idleMs === 0) this.letGo();
    else {
      this.idleTimer ??= setTimeout(() => {
        this.idleTimer = undefined;
        if (this.users === 0) this.letGo();
      }, this.idleMs).unref();
    }
  }

  private letGo(): void {
    this.allocated -= this.free.length;
    this.free.length = 0;
    this.freeOwn.length = 0;
  }

  /**
   * An upload's own first buffer, outside the budget: a returned one, or a new one. Never waits, so
   * that every upload can always make progress. At most one per upload that is reading its body.
   */
  takeOwn(): Buffer {
    return this.freeOwn.pop() ?? Buffer.allocUnsafe(this.bufferSize);
  }

  /**
   * An upload has read its whole body (its remaining parts are in flight or done): its own buffer
   * goes to the next upload instead of sitting idle through CompleteMultipartUpload.
   */
  giveOwn(b: Buffer): void {
    if (this.users > 0 && b.length === this.bufferSize && this.freeOwn.length < Math.max(this.users, MAX_IDLE_OWN)) this.freeOwn.push(b);
  }

  /** A free buffer, a new one if the budget allows, or undefined. */
  tryTake(): Buffer | undefined {
    const b = this.free.pop();
    if (b) return b;
    if (this.allocated >= this.maxBuffers) return undefined;
    this.allocated++;
    const fresh = Buffer.allocUnsafe(this.bufferSize);
    this.ours.add(fresh);
    return fresh;
  }

  owns(b: Buffer): boolean {
    return this.ours.has(b);
  }

  /** Return a buffer. One whose request failed is dropped rather than reused. */
  give(b: Buffer, reusable: boolean): void {
    if (reusable && this.users > 0) this.free.push(b);
    else this.allocated--;
  }

  get stats(): { allocated: number; free: number; users: number } {
    return { allocated: this.allocated, free: this.free.length, users: this.users };
  }
}
