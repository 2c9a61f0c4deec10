/**
 * The retry strategy of the S3 client: the SDK's classification (5xx, throttling such as SlowDown
 * and 503, connection resets, timeouts, DNS hiccups) with exponential backoff and full jitter, plus
 * a few S3 codes the SDK does not treat as transient. Unlike the SDK's standard strategy it has no
 * retry quota: a backup keeps retrying each request up to `maxAttempts` instead of giving up on
 * every request once a burst of errors has used the client-wide budget.
 *
 * Only requests whose body can be sent again are retried by the SDK: ours always are, because
 * Multipart uploads cut streams into Buffer parts, and every other request has a Buffer or no body.
 */
import type { RetryErrorInfo, RetryStrategyV2, RetryToken } from '@smithy/types';
import { BROKEN_CONNECTION_CODES } from './net-codes.js';

export interface RetryEvent {
  /** The attempt that failed, 1-based. */
  attempt: number;
  maxAttempts: number;
  /** The error's name or code (`SlowDown`, `InternalError`, `ECONNRESET`, `TimeoutError` …). */
  reason: string;
  status?: number;
  delayMs: number;
}

export interface RetryOptions {
  maxAttempts: number;
  /** Backoff base for errors (default 100 ms) and for throttling (default 1000 ms). */
  baseDelayMs?: number;
  throttlingBaseDelayMs?: number;
  /** Upper bound of one backoff (default 20 s). */
  maxDelayMs?: number;
  onRetry?: (event: RetryEvent) => void;
}

/** S3 error codes that are worth another attempt although the SDK does not classify them so. */
const EXTRA_RETRYABLE = new Set([
  'IncompleteBody', // the server got fewer bytes than Content-Length: a connection problem
  'BadDigest', // Content-MD5 / checksum mismatch: bytes corrupted in transit
  'XAmzContentSHA256Mismatch',
  'InternalError',
  'ServiceUnavailable',
  'SlowDown',
  'RequestTimeout',
  'OperationAborted', // "a conflicting conditional operation is currently in progress"
]);

class Token implements RetryToken {
  constructor(private readonly count: number, private readonly delay: number) {}
  getRetryCount(): number {
    return this.count;
  }
  getRetryDelay(): number {
    return this.delay;
  }
}

export function errorReason(err: unknown): { reason: string; status?: number } {
  const e = err as { name?: string; code?: string; Code?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  const status = e?.$metadata?.httpStatusCode;
  const reason = e?.Code ?? (e?.name && e.name !== 'Error' ? e.name : undefined) ?? e?.code ?? 'Error';
  return status === undefined ? { reason } : { reason, status };
}

export class PersistentRetryStrategy implements RetryStrategyV2 {
  readonly mode = 'standard';
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly throttlingBaseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly onRetry: ((event: RetryEvent) => void) | undefined;

  constructor(options: RetryOptions) {
    this.maxAttempts = Math.max(1, options.maxAttempts);
    this.baseDelayMs = options.baseDelayMs ?? 100;
    this.throttlingBaseDelayMs = options.throttlingBaseDelayMs ?? 1000;
    this.maxDelayMs = options.maxDelayMs ?? 20_000;
    this.onRetry = options.onRetry;
  }

  async acquireInitialRetryToken(): Promise<RetryToken> {
    return new Token(0, 0);
  }

  static retryable(info: RetryErrorInfo): boolean {
    if (info.errorType === 'TRANSIENT' || info.errorType === 'THROTTLING') return true;
    const e = info.error as { name?: string; code?: string; Code?: string; $metadata?: { httpStatusCode?: number } } | undefined;
    if (e?.name === 'AbortError') return false;
    // The SDK calls only 500, 502, 503 and 504 transient; proxies and CDNs in front of object stores
    // answer other 5xx (509, 520–524) for passing trouble too. 501 Not Implemented stays final.
    const status = e?.$metadata?.httpStatusCode;
    if (info.errorType === 'SERVER_ERROR' && status !== undefined && status >= 500 && status !== 501) return true;
    return EXTRA_RETRYABLE.has(e?.name ?? '') || EXTRA_RETRYABLE.has(e?.Code ?? '') || BROKEN_CONNECTION_CODES.has(e?.code ?? '');
  }

  async refreshRetryTokenForRetry(token: RetryToken, info: RetryErrorInfo): Promise<RetryToken> {
    const attempt = token.getRetryCount() + 1;
    if (attempt >= this.maxAttempts || !PersistentRetryStrategy.retryable(info)) throw new Error('no more retries');
    const base = info.errorType === 'THROTTLING' ? this.throttlingBaseDelayMs : this.baseDelayMs;
    let delayMs = Math.floor(Math.random() * Math.min(base * 2 ** token.getRetryCount(), this.maxDelayMs));
    if (info.retryAfterHint) delayMs = Math.max(delayMs, Math.min(info.retryAfterHint.getTime() - Date.now(), this.maxDelayMs));
    this.onRetry?.({ attempt, maxAttempts: this.maxAttempts, ...errorReason(info.error), delayMs });
    return new Token(attempt, delayMs);
  }

  recordSuccess(): void {}
}

/** Backoff for the retries this code does itself (resumed downloads, aborts, delete leftovers). */
export function backoffMs(retry: number, baseMs = 100, maxMs = 20_000): number {
  return Math.floor(Math.random() * Math.min(baseMs * 2 ** retry, maxMs));
}
