/**
 * A cap on the bytes per second that one backup uploads or one restore downloads, shared by all
 * of its transfers: vmbackup's and vmrestore's -maxBytesPerSecond, for databases whose backups
 * must not fill the link the database serves its clients on. Server-side copies move no bytes
 * through us and are not counted (vmbackup does not count them either).
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** The slowest limit taken: below it a transfer waits long enough between pieces to look stuck. */
const MIN_BYTES_PER_SECOND = 64 * 1024;
/** Bytes handed on at a time under a limit, so that no transfer waits long between two pieces. */
const PIECE = 64 * 1024;
/** After an idle spell, up to this much time's worth of bytes may pass at once. */
const BURST_MS = 50;

const UNITS: Record<string, number> = {
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 2 ** 10,
  MiB: 2 ** 20,
  GiB: 2 ** 30,
  TiB: 2 ** 40,
};

/**
 * A byte rate as vmbackup's flags spell it: a number of bytes, optionally with KB, MB, GB, TB
 * (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), such as `50MiB`; 0 means no limit.
 * Returns the bytes per second, or why the text is not a rate.
 */
export function parseBytesPerSecond(text: string): number | string {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]i?B)?$/.exec(text.trim());
  const unit = m?.[2] === undefined ? 1 : UNITS[m[2]];
  if (!m || unit === undefined) return 'a number of bytes per second such as 52428800, 50MiB or 1.5GB (units KB, MB, GB, TB, KiB, MiB, GiB, TiB), or 0 for no limit';
  const n = Math.floor(Number(m[1]) * unit);
  if (n !== 0 && n < MIN_BYTES_PER_SECOND) return `0 (no limit) or at least ${MIN_BYTES_PER_SECOND / 1024}KiB per second`;
  return n;
}

/**
 * The generic cell rate algorithm: every piece books its share of time on one clock, and waits
 * until the clock, less a small burst, has come. Concurrent transfers therefore share the rate in
 * the order they ask, and a transfer that is idle for a while earns no more than the burst.
 */
export class RateLimiter {
  private booked = 0;
  private readonly msPerByte: number;

  constructor(bytesPerSecond: number) {
    if (!(bytesPerSecond >= MIN_BYTES_PER_SECOND)) throw new Error(`a rate limit must be at least ${MIN_BYTES_PER_SECOND} bytes per second, not ${bytesPerSecond}`);
    this.msPerByte = 1000 / bytesPerSecond;
  }

  /** Waits until `bytes` more may pass. */
  async take(bytes: number): Promise<void> {
    const now = performance.now();
    this.booked = Math.max(this.booked, now) + bytes * this.msPerByte;
    const wait = this.booked - now - BURST_MS;
    if (wait > 0) await sleep(wait);
  }

  /** The chunk again, in pieces of at most 64 KiB, each handed on when the rate allows. */
  async *pace(chunk: Buffer): AsyncGenerator<Buffer> {
    for (let at = 0; at < chunk.length; at += PIECE) {
      const piece = chunk.subarray(at, at + PIECE);
      await this.take(piece.length);
      yield piece;
    }
  }
}
