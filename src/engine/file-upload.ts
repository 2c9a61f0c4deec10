/**
 * One file into the store as its vmbackup parts (layout.ts), read once: the bytes go to the parts'
 * bodies as they come, hashed whole on the way for the manifest.
 */
import { createHash } from 'node:crypto';
import type { ObjectStore } from '../store/types.js';
import type { FileEntry } from './files.js';
import { splitParts, type Part } from './layout.js';
import type { RateLimiter } from './rate-limit.js';

/**
 * Stream one file into its parts, hashing on the way. Reads exactly `file.size` bytes: a file
 * that shrank or grew while being read fails, rather than producing a backup that looks fine.
 * Each part's body hands the store the source's chunks as they are (no copy, no queue): the
 * store consumes a chunk before it asks for the next, so a source may reuse its buffer
 * (ObjectStore.put). Once `stop` is aborted the next chunk is not read: the upload fails with its
 * reason and the store aborts the multipart upload.
 */
export async function uploadFile(
  store: ObjectStore,
  keyOf: (part: Part) => string,
  entry: FileEntry,
  limiter: RateLimiter | undefined,
  onBytes: (n: number) => void,
  stop?: AbortSignal,
): Promise<string> {
  const source = new PartSource(entry, limiter, onBytes, stop);
  try {
    for (const part of splitParts(entry.file.path, entry.file.size)) {
      try {
        await store.put(keyOf(part), source.body(part.size), part.size);
      } catch (err) {
        throw source.error ?? err;
      }
    }
    await source.expectEnd();
  } catch (err) {
    await source.abandon(err);
    throw err;
  }
  return source.sha256();
}

/** A file's bytes, cut into the bodies of its parts and hashed whole (the manifest's SHA-256). */
class PartSource {
  private readonly hash = createHash('sha256');
  private readonly chunks: AsyncIterator<Buffer>;
  /** The rest of a chunk that crossed a part's end: the next part's first bytes. */
  private leftover: Buffer | undefined;
  /** An error of the source itself (too short, a read error), which is reported as it is, not as the store's. */
  error: unknown;

  constructor(
    private readonly entry: FileEntry,
    private readonly limiter: RateLimiter | undefined,
    private readonly onBytes: (n: number) => void,
    private readonly stop: AbortSignal | undefined,
  ) {
    this.chunks = (entry.stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  /** The next `size` bytes, as the source's chunks (a view of one where it crosses the end). */
  async *body(size: number): AsyncGenerator<Buffer> {
    for (let remaining = size; remaining > 0; ) {
      this.checkStop();
      let chunk = this.leftover ?? (await this.nextChunk());
      this.leftover = undefined;
      if (chunk.length > remaining) {
        this.leftover = chunk.subarray(remaining);
        chunk = chunk.subarray(0, remaining);
      }
      this.hash.update(chunk);
      remaining -= chunk.length;
      if (this.limiter) {
        // Counted as the limiter lets them go, so that progress shows the paced rate.
        for await (const piece of this.limiter.pace(chunk)) {
          this.checkStop();
          this.onBytes(piece.length);
          yield piece;
        }
      } else {
        this.onBytes(chunk.length);
        yield chunk;
      }
    }
  }

  /**
   * Once `stop` is aborted, no more bytes: its reason (another file's failure, an interrupt) is
   * what this upload reports, not the store's account of a body that ended early.
   */
  private checkStop(): void {
    if (!this.stop?.aborted) return;
    this.error = this.stop.reason;
    throw this.error;
  }

  /** After the last part: the file must have no more bytes than listed. */
  async expectEnd(): Promise<void> {
    if ((this.leftover && this.leftover.length > 0) || !(await this.next()).done) {
      throw new Error(`${this.entry.file.path} is longer than the ${this.entry.file.size} bytes listed: it changed while the backup read it`);
    }
  }

  /** Stops reading after a failure; ending the iteration closes a local file (its stream is a generator). */
  async abandon(err: unknown): Promise<void> {
    this.entry.stream.destroy(err as Error);
    await this.chunks.return?.().catch(() => undefined);
  }

  sha256(): string {
    return this.hash.digest('hex');
  }

  private async nextChunk(): Promise<Buffer> {
    const r = await this.next();
    if (r.done) {
      this.error = new Error(`${this.entry.file.path} is shorter than the ${this.entry.file.size} bytes listed: it changed while the backup read it`);
      throw this.error;
    }
    return Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
  }

  private async next(): Promise<IteratorResult<Buffer>> {
    try {
      return await this.chunks.next();
    } catch (err) {
      this.error = err;
      throw err;
    }
  }
}
