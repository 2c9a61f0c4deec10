/**
 * The parts of one multipart upload of the S3 store (S3Store.multipartPut) on their way: at most
 * `queueSize` in flight, the answers for CompleteMultipartUpload, the first failure, and for a
 * stream body the buffers its parts are copied into (PartBufferPool).
 */
import type { CompletedPart, UploadPartCommandOutput } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import type { StoreError, StoreErrorCode } from './errors.js';
import type { PartBufferPool } from './part-buffers.js';
import type { PutBody } from './types.js';

/** A part's ETag and checksums, as UploadPart and UploadPartCopy answer them. */
type PartAnswer = Pick<CompletedPart, 'ETag' | 'ChecksumCRC32' | 'ChecksumCRC32C' | 'ChecksumSHA1' | 'ChecksumSHA256'>;

/** A part for CompleteMultipartUpload: its number, and the ETag and checksums the server answered for it. */
export function completedPart(PartNumber: number, r: PartAnswer | undefined): CompletedPart {
  return {
    PartNumber,
    ETag: r?.ETag,
    ...(r?.ChecksumCRC32 ? { ChecksumCRC32: r.ChecksumCRC32 } : {}),
    ...(r?.ChecksumCRC32C ? { ChecksumCRC32C: r.ChecksumCRC32C } : {}),
    ...(r?.ChecksumSHA1 ? { ChecksumSHA1: r.ChecksumSHA1 } : {}),
    ...(r?.ChecksumSHA256 ? { ChecksumSHA256: r.ChecksumSHA256 } : {}),
  };
}

/** A Buffer body's parts are views of it: nothing to hand back when one is sent. */
const viewSent = (): void => undefined;

export interface PartQueueOptions {
  /** The object's size. */
  size: number;
  partSize: number;
  /** Parts in flight at most. */
  queueSize: number;
  pool: PartBufferPool;
  /** Whether a stream's parts borrow the pool's buffers (only with parts of the pool's size). */
  usePool: boolean;
  /** Whether to compute each part's SHA-256 for SigV4 while it fills. */
  signPayload: boolean;
  /** Sends one part (UploadPart); `sha256` is its payload hash when computed here. */
  upload: (UploadId: string, partNumber: number, data: Buffer, sha256: string | undefined) => Promise<UploadPartCommandOutput>;
}

/**
 * A class because the body's reader and every part's answer share this state: an answer frees a
 * place in the queue and a buffer, and records the part or the upload's failure, which stops the reader.
 */
export class PartQueue {
  private readonly size: number;
  private readonly partSize: number;
  private readonly partCount: number;
  private readonly parts: CompletedPart[] = [];
  private readonly inflight = new Set<Promise<void>>();
  /** The first failure, of a part or of the upload: nothing more is sent once there is one. */
  private failure: unknown;
  /** This upload's own buffer. */
  private own: Buffer | undefined;
  /** The own buffer, when not in flight. */
  private spare: Buffer | undefined;
  private bodyDone = false;

  constructor(private readonly o: PartQueueOptions) {
    this.size = o.size;
    this.partSize = o.partSize;
    this.partCount = Math.ceil(o.size / o.partSize);
  }

  /** Part `n`'s length (n is 1-based): partSize, except for the last part. */
  private partLength(n: number): number {
    return Math.min(this.partSize, this.size - (n - 1) * this.partSize);
  }

  /** Sends a Buffer body's parts, as views of it. */
  async sendBuffer(UploadId: string, body: Buffer): Promise<void> {
    const { partSize } = this;
    for (let n = 1; n <= this.partCount; n++) {
      await this.room();
      this.send(UploadId, n, body.subarray((n - 1) * partSize, (n - 1) * partSize + this.partLength(n)), undefined, viewSent);
    }
  }

  /** Copies a stream body into part buffers, sending each part as it fills; the body must have exactly `size` bytes. */
  async sendStream(UploadId: string, body: Exclude<PutBody, Buffer>, fail: (code: StoreErrorCode, text: string) => StoreError): Promise<void> {
    const { size, partCount } = this;
    let n = 1;
    let buf = await this.nextBuffer();
    let filled = 0;
    let total = 0;
    // The payload hash for SigV4 is computed while the part fills, when its bytes are in the CPU's cache.
    let hash = this.o.signPayload ? createHash('sha256') : undefined;
    for await (const chunk of body) {
      let c = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      total += c.length;
      if (total > size) throw fail('SizeMismatch', `the body is longer than the ${size} bytes announced`);
      while (c.length > 0) {
        const take = Math.min(c.length, this.partLength(n) - filled);
        c.copy(buf, filled, 0, take);
        hash?.update(take === c.length ? c : c.subarray(0, take));
        filled += take;
        c = c.subarray(take);
        if (filled === this.partLength(n)) {
          await this.room();
          this.send(UploadId, n, buf.subarray(0, filled), hash?.digest('hex'), this.release(buf));
          n++;
          filled = 0;
          if (n <= partCount) {
            buf = await this.nextBuffer();
            if (hash) hash = createHash('sha256');
          }
        }
      }
      this.check();
    }
    if (total !== size) throw fail('SizeMismatch', `the body ended after ${total} of the ${size} bytes announced`);
    this.bodyDone = true;
    if (this.spare && this.o.usePool) {
      this.o.pool.giveOwn(this.spare);
      this.spare = undefined;
    }
  }

  /** Once every part is sent: waits for the parts in flight, and returns all of them in order, or throws the first failure. */
  async allParts(): Promise<CompletedPart[]> {
    while (this.inflight.size > 0) await Promise.race(this.inflight);
    this.check();
    return this.parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
  }

  /** The upload failed with `err`: nothing more is sent, and the parts in flight are waited for (before the abort). */
  async abandon(err: unknown): Promise<void> {
    this.failure ??= err;
    await Promise.allSettled([...this.inflight]);
  }

  /** Sends part `partNumber`; `done` hears whether it went, to reuse its buffer or not. */
  private send(UploadId: string, partNumber: number, data: Buffer, sha256: string | undefined, done: (ok: boolean) => void): void {
    const p: Promise<void> = this.o
      .upload(UploadId, partNumber, data, sha256)
      .then(
        (r) => {
          this.parts.push(completedPart(partNumber, r));
          done(true);
        },
        (err: unknown) => {
          this.failure ??= err;
          done(false);
        },
      )
      .finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** Waits until fewer than `queueSize` parts are in flight. */
  private async room(): Promise<void> {
    while (this.inflight.size >= this.o.queueSize && this.failure === undefined) await Promise.race(this.inflight);
    this.check();
  }

  /** A buffer for the next part: our own, else a pooled one if a slot is free, else wait for a part of ours. */
  private async nextBuffer(): Promise<Buffer> {
    const { pool, usePool } = this.o;
    for (;;) {
      this.check();
      if (!this.own) {
        this.own = usePool ? pool.takeOwn() : Buffer.allocUnsafe(this.partSize);
        return this.own;
      }
      if (this.spare) {
        const b = this.spare;
        this.spare = undefined;
        return b;
      }
      if (usePool && this.inflight.size < this.o.queueSize) {
        const pooled = pool.tryTake();
        if (pooled) return pooled;
      }
      if (this.inflight.size === 0) throw new Error('multipart upload: no part buffer and no part in flight'); // cannot happen
      await Promise.race(this.inflight);
    }
  }

  /** Where buffer `b` goes when its part's request ends. */
  private release(b: Buffer): (ok: boolean) => void {
    return (ok) => {
      if (b !== this.own) this.o.pool.give(b, ok);
      else if (!ok) this.own = undefined; // a failed request's buffer is not reused
      else if (this.bodyDone && this.o.usePool) this.o.pool.giveOwn(b);
      else this.spare = b;
    };
  }
}
