/**
 * A read-only ObjectStore over a restore plan (engine/plan.ts): every object is a presigned GET URL
 * with its size, so the restore init container reads a backup without credentials, and the restore
 * engine runs on it unchanged.
 *
 * - Keys are `<backup>/<key in the plan>`: `restoreBackup({ store, name: store.backupName })`.
 * - head/list/listDirectories answer from the plan; put/copy/delete throw (read-only).
 * - get: one GET (undici) per object, with a Range header for byte ranges. Like S3Store's GETs:
 *   5xx, 429 and connection failures are retried with backoff, and a body that breaks off mid-way
 *   resumes with a ranged GET pinned to the first response's ETag (If-Match).
 * - readInto (the restore's bulk path): the GET through direct-get.ts, which reads into reused
 *   buffers; whatever it does not finish (an error status, a broken connection) continues as get()
 *   does, from the byte where it stopped.
 * - A 403 means the URL was refused: expired (or its signing session did), or signed for another
 *   endpoint than the one it reaches. Nothing can fix that but a new plan: run the restore again.
 *
 * The URLs are secrets until they expire: no message of this module contains one.
 */
import { rootCertificates } from 'node:tls';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request, type Dispatcher } from 'undici';
import { scrubUrls } from '../common/redact.js';
import { BODY_TIMEOUT_MS, DirectGetter, HEADERS_TIMEOUT_MS } from './direct-get.js';
import { StoreError, type StoreErrorCode } from './errors.js';
import { checkRange } from './byte-range.js';
import { checkKey, checkPrefix, compareKeys } from './keys.js';
import { isBrokenRead, isTransientNetworkCode, TLS_CODES, UNREACHABLE_CODES } from './net-codes.js';
import { resumeState, resumingBody } from './resume.js';
import type { RetryNotice } from './retry-report.js';
import { backoffMs } from './s3-retry.js';
import { isWebPage } from './web-page.js';
import type { ByteRange, ChunkSink, ObjectInfo, ObjectStore } from './types.js';

/** What PlanStore needs of a plan (engine/plan.ts RestorePlan has it). */
export interface PresignedObjects {
  restore: string;
  backup: string;
  objects: Record<string, { url: string; size: number }>;
}

export interface PresignedHttpOptions {
  /** Extra CA certificates (PEM) to trust besides Node's roots (the location's caCert). */
  ca?: string[];
  insecureSkipTLSVerify?: boolean;
  /** Attempts per request and per resumed download (default 10). */
  maxAttempts?: number;
  /** Backoff base (default 200 ms). */
  retryBaseMs?: number;
  /** Told about every retry before its pause (for logs and tests); never given a URL. */
  onRetry?: (notice: RetryNotice & { target: string; delayMs: number }) => void;
}

/**
 * The presigned URL was refused: HTTP 403, or S3's `ExpiredToken` (HTTP 400 on AWS). `s3Code` and
 * `s3Message` come from the S3 error body (`AccessDenied`, `Request has expired`), `expires` from
 * its `<Expires>` when S3 says so.
 */
export class PresignedUrlRefused extends StoreError {
  constructor(
    message: string,
    target: string,
    readonly s3Code: string | undefined,
    readonly s3Message: string | undefined,
    readonly expires: string | undefined,
    status = 403,
  ) {
    super('AccessDenied', message, { operation: 'get', target, ...(s3Code ? { backendCode: s3Code } : {}), status });
    this.name = 'PresignedUrlRefused';
  }

  /** Past its X-Amz-Expires ("Request has expired"). */
  get urlExpired(): boolean {
    return /request has expired/i.test(this.s3Message ?? '');
  }

  /**
   * Signed with temporary credentials (STS: IRSA, instance roles, assumed roles) whose session has
   * ended: the URL dies with the session, whatever its X-Amz-Expires.
   */
  get sessionExpired(): boolean {
    return this.s3Code === 'ExpiredToken';
  }
}

/** Parallel connections per origin: above the restore's concurrency. */
const CONNECTIONS = 32;

/** What to check for a connection failure, by its code. */
function hint(code: string): string {
  if (UNREACHABLE_CODES.has(code)) return ': check that this pod can reach the object store (the location\'s publicUrl is the address for pods, when it differs from Velero\'s)';
  if (TLS_CODES.has(code)) return `: TLS verification failed; give the CA bundle as ${'$'}VELERO_PLUGIN_VICTORIA_CA_CERT or --ca-cert-file (the location's caCert), or --insecure-skip-tls-verify`;
  return '';
}

function errorCode(err: unknown): string {
  const e = err as { code?: string; name?: string; cause?: { code?: string } } | undefined;
  return e?.code ?? e?.cause?.code ?? e?.name ?? 'Error';
}

/** A broken read, or a connection that may succeed next time (the plan's requests have no SDK retrying them). */
function isRetryable(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } } | undefined;
  return isBrokenRead(err) || isTransientNetworkCode(e?.code) || isTransientNetworkCode(e?.cause?.code);
}

/**
 * Drops a response body unread. undici's body destroyed before its end emits an AbortError, which
 * with no listener would be an uncaught exception ending the process, not the error we throw.
 */
function discard(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}

const xmlTag = (xml: string, tag: string): string | undefined => new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml)?.[1];

/** GETs of presigned URLs with retries; shared by PlanStore and fetchRestorePlan. */
class PresignedHttp {
  readonly maxAttempts: number;
  private readonly dispatcher: Dispatcher;
  private readonly options: PresignedHttpOptions;

  constructor(options: PresignedHttpOptions = {}) {
    this.options = options;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 10);
    this.dispatcher = new Agent({
      connections: CONNECTIONS,
      connect: {
        timeout: 10_000,
        rejectUnauthorized: !options.insecureSkipTLSVerify,
        ...(options.ca && options.ca.length > 0 ? { ca: [...rootCertificates, ...options.ca] } : {}),
      },
    });
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  /** Says that attempt `attempt` failed and the next one follows in `delayMs`. */
  retried(attempt: number, failed: { reason: string; status?: number }, target: string, delayMs: number): void {
    this.options.onRetry?.({ attempt, maxAttempts: this.maxAttempts, ...failed, target, delayMs });
  }

  /** retried(), then the pause: the backoff of retry number `attempt - 1`. */
  async backoff(attempt: number, failed: { reason: string; status?: number }, target: string): Promise<void> {
    const delayMs = backoffMs(attempt - 1, this.options.retryBaseMs ?? 200);
    this.retried(attempt, failed, target, delayMs);
    await sleep(delayMs);
  }

  /**
   * One GET, retried on 5xx, 429 and connection failures. `range` asks for bytes start-end
   * (inclusive) and expects 206; without it, 200. `length` (when known) must match Content-Length.
   */
  async get(target: string, url: string, opts: { range?: ByteRange; ifMatch?: string; length?: number } = {}): Promise<{ body: Readable; etag: string | undefined; length: number | undefined }> {
    const fail = (code: StoreErrorCode, text: string, extra: { backendCode?: string; status?: number } = {}) =>
      new StoreError(code, `get ${target}: ${scrubUrls(text)}`, { operation: 'get', target, ...extra });
    const headers: Record<string, string> = {};
    if (opts.range) headers.range = `bytes=${opts.range.start}-${opts.range.end}`;
    if (opts.ifMatch) headers['if-match'] = opts.ifMatch;
    for (let attempt = 1; ; attempt++) {
      // What a retry is told: the S3 code and the status, as the S3 store tells them (retry-report.ts).
      let failed: { reason: string; status?: number };
      try {
        const res = await request(url, {
          method: 'GET',
          headers,
          dispatcher: this.dispatcher,
          headersTimeout: HEADERS_TIMEOUT_MS,
          bodyTimeout: BODY_TIMEOUT_MS,
        });
        const status = res.statusCode;
        const header = (name: string) => {
          const v = res.headers[name];
          return Array.isArray(v) ? v[0] : v;
        };
        if (status === (opts.range ? 206 : 200)) {
          const cl = header('content-length');
          const length = cl === undefined ? undefined : Number(cl);
          // Its bytes would only fail the SHA-256 later, without saying why.
          const type = header('content-type');
          if (isWebPage(type, cl)) {
            discard(res.body);
            throw fail('Config', `answered with a web page (Content-Type ${type}) instead of the object: a proxy or a login portal between this pod and the object store? check that the pod reaches the store directly (the location's publicUrl, when pods need another address than Velero)`, { status });
          }
          if (opts.length !== undefined && length !== undefined && length !== opts.length) {
            discard(res.body);
            throw fail('SizeMismatch', `the server announced ${length} bytes, ${opts.length} were expected: the object was replaced after the restore plan was made`);
          }
          return { body: res.body, etag: header('etag'), length };
        }
        if (status === 200 && opts.range) {
          discard(res.body);
          throw fail('Failed', 'the server ignored the Range header (HTTP 200 instead of 206)', { status });
        }
        const text = (await res.body.text().catch(() => '')).slice(0, 4096);
        const s3Code = xmlTag(text, 'Code');
        const s3Message = xmlTag(text, 'Message');
        const what = `HTTP ${status}${s3Code ? ` ${s3Code}` : ''}${s3Message ? `: ${s3Message}` : ''}`;
        const backend = { ...(s3Code ? { backendCode: s3Code } : {}), status };
        if (status === 403 || s3Code === 'ExpiredToken') {
          const why = s3Code === 'ExpiredToken' ? 'the temporary credentials that signed it have expired' : 'expired or signed for another endpoint';
          throw new PresignedUrlRefused(
            `get ${target}: the presigned URL was refused (${scrubUrls(what)}; ${why}): run the restore again`,
            target,
            s3Code,
            s3Message,
            xmlTag(text, 'Expires'),
            status,
          );
        }
        if (status === 404) throw fail('NotFound', `the object does not exist (${what}): the backup was deleted or changed after the restore plan was made`, backend);
        if (status === 412) throw fail('Changed', `the object was replaced while it was being read (${what})`, backend);
        if (status === 416) throw fail('InvalidRange', `the byte range is not satisfiable (${what})`, backend);
        if (status < 500 && status !== 429) throw fail('Failed', `failed (${what})`, backend);
        failed = { reason: s3Code ?? `HTTP ${status}`, status };
        if (attempt >= this.maxAttempts) throw fail('Failed', `failed after ${attempt} attempts (${what})`, backend);
      } catch (err) {
        if (err instanceof StoreError) throw err;
        const reason = errorCode(err);
        failed = { reason };
        if (!isRetryable(err)) throw fail('Failed', `failed (${reason}: ${(err as Error)?.message ?? String(err)})${hint(reason)}`, { backendCode: reason });
        if (attempt >= this.maxAttempts) throw fail('Failed', `failed after ${attempt} attempts (${reason}: ${(err as Error)?.message ?? String(err)})${hint(reason)}`, { backendCode: reason });
      }
      await this.backoff(attempt, failed, target);
    }
  }

  /**
   * The bytes of a GET response of `length` bytes starting at `start`; when the connection breaks,
   * the rest is fetched with a ranged GET pinned to the ETag.
   */
  resuming(target: string, url: string, first: { body: Readable; etag: string | undefined }, start: number, length: number): AsyncGenerator<Buffer> {
    return resumingBody(first.body, {
      length,
      maxAttempts: this.maxAttempts,
      retryable: isRetryable,
      beforeResume: async (n, err) => {
        await this.backoff(n + 1, { reason: `resume GET: ${errorCode(err)}` }, target);
      },
      reopen: async (offset) =>
        (await this.get(target, url, { range: { start: start + offset, end: start + length - 1 }, ...(first.etag ? { ifMatch: first.etag } : {}) })).body,
      giveUp: (err, received, resumes) => {
        const reason = errorCode(err);
        return new StoreError('Failed', `get ${target}: ${scrubUrls(`${reason}: ${(err as Error)?.message ?? String(err)}`)}${resumeState(received, length, resumes)}`, {
          operation: 'get', target, backendCode: reason,
        });
      },
      tooLong: () => new StoreError('SizeMismatch', `get ${target}: the server sent more than the ${length} bytes expected`, { operation: 'get', target }),
    });
  }
}

/** Largest plan accepted: far above any real one (about 600 bytes per object). */
const MAX_PLAN_BYTES = 256 * 1024 * 1024;

/** Downloads a restore plan from its presigned URL (retrying like every GET here). */
export async function fetchRestorePlan(url: string, options: PresignedHttpOptions = {}): Promise<Buffer> {
  const http = new PresignedHttp(options);
  const target = 'the restore plan';
  try {
    const first = await http.get(target, url);
    if (first.length !== undefined && first.length > MAX_PLAN_BYTES) {
      discard(first.body);
      throw new StoreError('SizeMismatch', `get ${target}: ${first.length} bytes is not a restore plan (at most ${MAX_PLAN_BYTES})`, { operation: 'get', target });
    }
    const chunks: Buffer[] = [];
    let n = 0;
    if (first.length === undefined) {
      for await (const c of first.body) {
        const buf = Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array);
        n += buf.length;
        if (n > MAX_PLAN_BYTES) throw new StoreError('SizeMismatch', `get ${target}: more than ${MAX_PLAN_BYTES} bytes is not a restore plan`, { operation: 'get', target });
        chunks.push(buf);
      }
    } else {
      for await (const buf of http.resuming(target, url, first, 0, first.length)) chunks.push(buf);
    }
    return Buffer.concat(chunks);
  } finally {
    await http.close();
  }
}

function readOnly(operation: string, target: string): StoreError {
  return new StoreError('Failed', `${operation} ${target}: a restore plan is read-only`, { operation, target });
}

export class PlanStore implements ObjectStore {
  readonly location: string;
  /** The backup's folder: the `name` to restore (`restoreBackup({ store, name: store.backupName })`). */
  readonly backupName: string;
  private readonly objects = new Map<string, { url: string; size: number }>();
  private readonly keys: string[];
  private readonly http: PresignedHttp;
  private readonly direct: DirectGetter;

  constructor(plan: PresignedObjects, options: PresignedHttpOptions = {}) {
    checkKey(plan.backup, 'open');
    this.backupName = plan.backup;
    this.location = `restore-plan:${plan.restore}`;
    for (const [rel, o] of Object.entries(plan.objects)) {
      const key = `${plan.backup}/${rel}`;
      checkKey(key, 'open');
      this.objects.set(key, { url: o.url, size: o.size });
    }
    this.keys = [...this.objects.keys()].sort(compareKeys);
    this.http = new PresignedHttp(options);
    this.direct = new DirectGetter({
      ...(options.ca ? { ca: options.ca } : {}),
      ...(options.insecureSkipTLSVerify ? { insecureSkipTLSVerify: true } : {}),
    });
  }

  /** Close the connections. */
  async close(): Promise<void> {
    this.direct.close();
    await this.http.close();
  }

  private target(key: string): string {
    return `${this.location}/${key}`;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    checkPrefix(prefix, 'list');
    for (const key of this.keys) if (key.startsWith(prefix)) yield { key, size: this.objects.get(key)!.size };
  }

  async listDirectories(prefix: string): Promise<string[]> {
    checkPrefix(prefix, 'listDirectories');
    const dirs = new Set<string>();
    for (const key of this.keys) {
      if (!key.startsWith(prefix)) continue;
      const slash = key.indexOf('/', prefix.length);
      if (slash > prefix.length) dirs.add(key.slice(0, slash + 1));
    }
    return [...dirs].sort(compareKeys);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    checkKey(key, 'head');
    const o = this.objects.get(key);
    return o ? { key, size: o.size } : undefined;
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const { target, o } = this.object(key);
    let start = 0;
    let length = o.size;
    if (range) {
      checkRange(range, 'get', target, o.size);
      start = range.start;
      length = Math.min(range.end, o.size - 1) - start + 1;
    }
    if (length === 0) return Readable.from([]);
    return Readable.from(await this.download(target, o.url, o.size, start, length), { objectMode: false });
  }

  async readInto(key: string, size: number, sink: ChunkSink): Promise<void> {
    const { target, o } = this.object(key);
    if (size === 0) return;
    await this.direct.read(o.url, { length: size }, sink, {
      resumed: (reason) => this.http.retried(1, { reason: `resume GET: ${reason}` }, target, 0),
      rest: (start, etag) => this.download(target, o.url, size, start, size - start, etag),
    });
  }

  /** The plan's entry for `key`; a key the plan does not name is NotFound. */
  private object(key: string): { target: string; o: { url: string; size: number } } {
    checkKey(key, 'get');
    const target = this.target(key);
    const o = this.objects.get(key);
    if (!o) throw new StoreError('NotFound', `get ${target}: the object is not in the restore plan`, { operation: 'get', target });
    return { target, o };
  }

  /**
   * `length` bytes from `start` of an object of `size` bytes (a ranged GET unless that is all of
   * it; pinned to `etag` when given), resumed where the connection breaks.
   */
  private async download(target: string, url: string, size: number, start: number, length: number, etag?: string): Promise<AsyncGenerator<Buffer>> {
    const whole = start === 0 && length === size;
    const first = await this.http.get(target, url, { ...(whole ? {} : { range: { start, end: start + length - 1 } }), ...(etag ? { ifMatch: etag } : {}), length });
    return this.http.resuming(target, url, first, start, length);
  }

  async put(key: string, _body?: unknown, _size?: number): Promise<void> {
    throw readOnly('put', this.target(key));
  }

  async copy(fromKey: string, _toKey?: string, _size?: number): Promise<void> {
    throw readOnly('copy', this.target(fromKey));
  }

  async delete(keys: string[]): Promise<void> {
    throw readOnly('delete', keys.length === 1 ? this.target(keys[0]!) : this.location);
  }
}
