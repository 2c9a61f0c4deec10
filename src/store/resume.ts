/**
 * A download that survives a broken connection: when the body breaks off (a reset, a premature
 * close, a timeout), the rest is fetched with a new ranged request from where it stopped, so that a
 * reset in the middle of a 1 GiB object costs one request, not the object. Shared by the S3 store
 * and the presigned-URL store, which differ only in how they ask again and how an error reads.
 */
import type { Readable } from 'node:stream';
import { StoreError } from './errors.js';

export interface Resumption {
  /** Bytes the whole download must deliver. */
  length: number;
  /** Attempts in all, the first request included. */
  maxAttempts: number;
  /** Whether the download may be resumed after `err` (never after a StoreError). */
  retryable(err: unknown): boolean;
  /** Waits before resumption number `n` (0 for the first) and reports it. */
  beforeResume(n: number, err: unknown): Promise<void>;
  /** A body for the bytes from `offset` (of this download) to its end, pinned to the same object version. */
  reopen(offset: number): Promise<Readable>;
  /** What to throw when giving up after `err`, having received `received` bytes over `resumes` resumptions. */
  giveUp(err: unknown, received: number, resumes: number): Promise<Error> | Error;
  /** What to throw when the server sends more than `length` bytes. */
  tooLong(): StoreError;
}

export async function* resumingBody(first: Readable, r: Resumption): AsyncGenerator<Buffer> {
  let current = first;
  let received = 0;
  let resumes = 0;
  try {
    for (;;) {
      try {
        for await (const chunk of current) {
          const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
          received += buf.length;
          if (received > r.length) throw r.tooLong();
          yield buf;
        }
        if (received === r.length) return;
        throw Object.assign(new Error(`the connection closed after ${received} of ${r.length} bytes`), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
      } catch (err) {
        if (err instanceof StoreError) throw err;
        if (!r.retryable(err) || resumes + 1 >= r.maxAttempts) throw await r.giveUp(err, received, resumes);
        current.destroy();
        await r.beforeResume(resumes, err);
        resumes++;
        current = await r.reopen(received);
      }
    }
  } finally {
    current.destroy();
  }
}

/** ` (after 5 of 9 bytes, 1 resumed download(s))`: where a download stood when it failed. */
export function resumeState(received: number, length: number, resumes: number): string {
  return ` (after ${received} of ${length} bytes${resumes ? `, ${resumes} resumed download(s)` : ''})`;
}
