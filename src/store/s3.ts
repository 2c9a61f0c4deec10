/**
 * The S3 object store (`s3://bucket/prefix`), on @aws-sdk/client-s3.
 *
 * - put: one PutObject up to `partSize`; above it a multipart upload with up to `queueSize` parts
 *   in flight per put. Stream parts are copied into reused buffers: each upload has one (handed
 *   on to the next upload once its body is read, not held through CompleteMultipartUpload), and
 *   borrows more from a store-wide budget (`uploadBufferBytes`) when free; the buffers stay with
 *   the store while uploads keep coming. So memory for all parallel uploads together is bounded by
 *   (uploads reading their body × partSize) + uploadBufferBytes, whatever the object sizes
 *   (the parts in flight and their buffers: s3-part-queue.ts).
 *   (lib-storage's `Upload` allocates a fresh concatenated Buffer per part; measured against moto,
 *   4 parallel 128 MiB uploads peaked at 391 MiB RSS with it and 225 MiB with this.)
 *   Every request body is a Buffer, so the SDK retries failed parts; a part that fails for good
 *   aborts the multipart upload: nothing left to pay for, the previous object stays. The stream
 *   must deliver exactly `size` bytes, or the put fails.
 * - copy: server-side CopyObject; above `multipartCopyThreshold` (5 GiB, the CopyObject limit) a
 *   multipart copy with UploadPartCopy, pinned to the source's ETag. Given the ETag the caller
 *   listed, a source replaced since fails the copy ('Changed') instead of being copied.
 * - get: a GetObject whose body resumes with a ranged GetObject (If-Match the first ETag) when the
 *   connection breaks mid-stream, which the SDK's own retries cannot do.
 * - readInto (the restore's bulk path): the GetObject request as the SDK builds and signs it
 *   (endpoint, addressing style, SigV4 headers), sent through direct-get.ts, which reads the body
 *   into reused buffers instead of allocating per chunk; what it does not finish (an error status,
 *   a redirect, a broken connection) continues as get() from where it stopped, with the SDK's
 *   retries and error messages. (Header signing rather than a presigned URL: moto in
 *   authenticated mode, the test server, answers presigned URLs with 500.)
 * - list: ListObjectsV2 pages; listDirectories: the same with delimiter `/`.
 * - delete: DeleteObjects in batches of 1000, retrying per-key errors the server reports.
 * - Every request: the SDK's error classification with more attempts, no retry quota, and
 *   backoff with jitter (s3-retry.ts).
 * - Errors are StoreErrors naming the operation and object, and for auth problems what to check
 *   (s3-errors.ts). The options, their defaults and checks, and the SDK client are in s3-client.ts.
 *
 * Checksums: `requestChecksumCalculation`/`responseChecksumValidation` are the SDK's settings.
 * `WHEN_SUPPORTED` (the SDK's default) sends a CRC32 (or `checksumAlgorithm`) with every upload and
 * validates whole-object checksums on download; `WHEN_REQUIRED` sends checksums only where S3
 * demands one (DeleteObjects) and validates none, for S3-compatible servers that reject or
 * mishandle flexible checksums. See bslS3Options() in actions/bsl-s3-options.ts for the mapping of Velero's
 * `checksumAlgorithm` key.
 *
 * Payload signing (`signPayload`): over http:// every PutObject/UploadPart body is signed with its
 * SHA-256 (computed while the part buffer fills, when the bytes are still in the CPU cache, not by
 * the SDK afterwards); over https:// bodies go as `UNSIGNED-PAYLOAD`, TLS protecting them on the
 * wire, which saves hashing every byte a second time (the manifest's SHA-256 is computed anyway).
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3Client,
  type S3ClientResolvedConfig,
  type ServiceInputTypes,
  type ServiceOutputTypes,
  type StorageClass,
} from '@aws-sdk/client-s3';
import type { Command } from '@smithy/types';
import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { DirectGetter } from './direct-get.js';
import { nextToken } from './s3-listing.js';
import { signedRequest } from './s3-signed-request.js';
import { StoreError, type StoreErrorCode } from './errors.js';
import { checkRange } from './byte-range.js';
import { isBrokenRead } from './net-codes.js';
import { PartBufferPool } from './part-buffers.js';
import { OpenUploads } from './s3-open-uploads.js';
import { completedPart, PartQueue } from './s3-part-queue.js';
import { forEachLimit } from './pool.js';
import { resumeState, resumingBody } from './resume.js';
import { checkKey, checkPrefix, compareKeys } from './keys.js';
import { checkTagging, configError, DEFAULTS, loadCa, MAX_DELETE_BATCH, MAX_PART_SIZE, MiB, MIN_PART_SIZE, positive, s3Client, type S3ChecksumAlgorithm, type S3StoreOptions, type ServerSideEncryption, type TransportSettings } from './s3-client.js';
import { endpointName, translateS3Error } from './s3-errors.js';
import { backoffMs, errorReason } from './s3-retry.js';
import type { ByteRange, ChunkSink, ObjectInfo, ObjectStore, PutBody } from './types.js';

/** S3 limits (the part sizes and the delete batch are in s3-client.ts, beside the options they bound). */
const MAX_PARTS = 10_000;
const MAX_KEY_BYTES = 1024;
/** Stream puts up to this size get a buffer of their own size rather than a part buffer. */
const SMALL_PUT = 1024 * 1024;
/** How long the abort of a failed multipart upload may take (abortUpload). */
const ABORT_UPLOAD_MS = 30_000;

/** An ETag as S3 sends it (`"…"`), without the quotes: ObjectInfo.etag. */
function unquoted(etag: string): string {
  return etag.replace(/^"(.*)"$/, '$1');
}

/** What one HeadBucket told: the bucket's region if AWS named it, and the error if it failed. */
interface BucketHead {
  region?: string;
  error?: unknown;
}

export class S3Store implements ObjectStore {
  readonly location: string;
  readonly bucket: string;
  /** The key prefix with its trailing `/`. */
  private readonly root: string;
  readonly client: S3Client;
  private readonly options: S3StoreOptions;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly multipartCopyThreshold: number;
  private readonly copyPartSize: number;
  private readonly copyQueueSize: number;
  private readonly listPageSize: number;
  private readonly deleteBatchSize: number;
  private readonly maxAttempts: number;
  /** One HeadBucket per store, shared by the missing-bucket check and the region lookup. */
  private bucketHead: Promise<BucketHead> | undefined;
  private readonly partBuffers: PartBufferPool;
  private readonly openUploads = new OpenUploads();
  private readonly signPayload: boolean;
  private readonly direct: DirectGetter;
  /** Ends this store's requests when aborted (withSignal). */
  private signal: AbortSignal | undefined;

  constructor(options: S3StoreOptions, client?: S3Client) {
    if (!options.bucket || /[/\\]/.test(options.bucket)) throw configError(`invalid bucket name ${JSON.stringify(options.bucket)}`);
    const prefix = options.prefix;
    if (!prefix || prefix.startsWith('/') || prefix.endsWith('/')) {
      throw configError(`invalid prefix ${JSON.stringify(prefix)} for bucket ${options.bucket}: it must be non-empty, without leading or trailing "/"`);
    }
    checkKey(prefix, 'open');
    this.options = options;
    this.bucket = options.bucket;
    this.root = `${prefix}/`;
    this.location = `s3://${options.bucket}/${prefix}`;
    this.partSize = positive('partSize', options.partSize, DEFAULTS.partSize, MIN_PART_SIZE, MAX_PART_SIZE);
    this.queueSize = positive('queueSize', options.queueSize, DEFAULTS.queueSize, 1, 64);
    this.multipartCopyThreshold = positive('multipartCopyThreshold', options.multipartCopyThreshold, DEFAULTS.multipartCopyThreshold, 0, MAX_PART_SIZE);
    this.copyPartSize = positive('copyPartSize', options.copyPartSize, DEFAULTS.copyPartSize, MIN_PART_SIZE, MAX_PART_SIZE);
    this.copyQueueSize = positive('copyQueueSize', options.copyQueueSize, DEFAULTS.copyQueueSize, 1, 64);
    this.listPageSize = positive('listPageSize', options.listPageSize, DEFAULTS.listPageSize, 1, 1000);
    this.deleteBatchSize = positive('deleteBatchSize', options.deleteBatchSize, DEFAULTS.deleteBatchSize, 1, MAX_DELETE_BATCH);
    this.maxAttempts = positive('maxAttempts', options.maxAttempts, DEFAULTS.maxAttempts, 1, 100);
    const bufferBytes = positive('uploadBufferBytes', options.uploadBufferBytes, DEFAULTS.uploadBufferBytes, 0);
    this.partBuffers = new PartBufferPool(this.partSize, Math.floor(bufferBytes / this.partSize), 2000);
    this.signPayload = options.signPayload ?? !/^https:/i.test(options.endpoint ?? 'https://');
    if (options.tagging) checkTagging(options.tagging);
    // The direct reads use these settings even when a client is passed in (tests, a store sharing another's client).
    const transport: TransportSettings = { ca: loadCa(options), socketTimeoutMs: positive('socketTimeoutMs', options.socketTimeoutMs, DEFAULTS.socketTimeoutMs) };
    this.client = client ?? s3Client(options, transport);
    this.direct = new DirectGetter({
      ...(transport.ca ? { ca: transport.ca } : {}),
      ...(options.insecureSkipTLSVerify ? { insecureSkipTLSVerify: true } : {}),
      headersTimeoutMs: transport.socketTimeoutMs,
      bodyTimeoutMs: transport.socketTimeoutMs,
    });
  }

  /** The key prefix, without its trailing `/` (for presigned URLs, s3-presign.ts). */
  get prefix(): string {
    return this.root.slice(0, -1);
  }

  /**
   * This store with its requests bound to `signal`, in place of any signal it had: once aborted,
   * the requests in flight are cancelled, no retry or backoff follows, and nothing new is sent.
   * The view is an object whose prototype is this store, so it shares the client, the part
   * buffers, the open uploads and the bucket check; only the signal differs. So an item's timeout
   * ends its uploads in flight while the clean-up after it uses the same connections under a
   * deadline of its own.
   */
  withSignal(signal: AbortSignal): S3Store {
    const view = Object.create(this) as S3Store;
    view.signal = signal;
    return view;
  }

  /** A request of this store: under its signal, if it has one. */
  private send<I extends ServiceInputTypes, O extends ServiceOutputTypes>(command: Command<ServiceInputTypes, I, ServiceOutputTypes, O, S3ClientResolvedConfig>): Promise<O> {
    return this.client.send(command, this.signal ? { abortSignal: this.signal } : {});
  }

  /** A pause between this store's own retries, ended by its signal. */
  private pause(ms: number): Promise<void> {
    return sleep(ms, undefined, this.signal ? { signal: this.signal } : {});
  }

  /** Close the connections (the store is unusable afterwards; its views too). */
  destroy(): void {
    this.direct.close();
    this.client.destroy();
  }

  // ---- keys, errors ----

  private fullKey(key: string, operation: string): string {
    checkKey(key, operation);
    const full = this.root + key;
    if (Buffer.byteLength(full) > MAX_KEY_BYTES) {
      throw new StoreError('InvalidKey', `${operation}: key ${JSON.stringify(full)} is longer than S3's ${MAX_KEY_BYTES} bytes`, { operation });
    }
    return full;
  }

  private target(key: string): string {
    return `${this.location}/${key}`;
  }

  /** `err` as a StoreError naming the operation and the object (the store itself without `key`). */
  private translate(err: unknown, operation: string, key?: string): Promise<StoreError> {
    return translateS3Error(err, operation, key === undefined ? this.location : this.target(key), { client: this.client, options: this.options });
  }

  private async call<T>(operation: string, key: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw await this.translate(err, operation, key);
    }
  }

  /**
   * The bucket's region as AWS reports it (HeadBucket's x-amz-bucket-region), when no region was
   * configured for AWS S3 itself; undefined with a configured region or endpoint, or when AWS does
   * not say. The SDK follows region redirects for requests, but a presigned URL is signed for one
   * region and must name the bucket's (velero-plugin-for-aws looks it up the same way).
   */
  async bucketRegion(): Promise<string | undefined> {
    if (this.options.region || this.options.endpoint) return undefined;
    return (await this.headBucket()).region;
  }

  /** HEAD answers 404 for a missing bucket too: check the bucket once, so that a typo is not "no object". */
  private async checkBucket(): Promise<void> {
    const { error } = await this.headBucket();
    if (error === undefined) return;
    const { status } = errorReason(error);
    if (status === 404) {
      // Asked again next time: the bucket may be created meanwhile.
      this.bucketHead = undefined;
      throw new StoreError('NotFound', `bucket ${this.bucket} does not exist on ${endpointName(this.options)} (NoSuchBucket)`, { operation: 'head', target: this.location, backendCode: 'NoSuchBucket', status, cause: error });
    }
    // 403 (no s3:ListBucket) and everything else: cannot tell; assume the bucket exists.
  }

  private headBucket(): Promise<BucketHead> {
    this.bucketHead ??= this.send(new HeadBucketCommand({ Bucket: this.bucket })).then(
      (res) => (res.BucketRegion ? { region: res.BucketRegion } : {}),
      (error: unknown) => {
        // A 403 (no s3:ListBucket) still carries the region header.
        const region = (error as { $response?: { headers?: Record<string, string> } }).$response?.headers?.['x-amz-bucket-region'];
        return { error, ...(region ? { region } : {}) };
      },
    );
    return this.bucketHead;
  }

  private writeParams(): { ServerSideEncryption?: ServerSideEncryption; SSEKMSKeyId?: string; StorageClass?: StorageClass; Tagging?: string } {
    const o = this.options;
    return {
      ...(o.kmsKeyId
        ? { ServerSideEncryption: o.serverSideEncryption === 'aws:kms:dsse' ? ('aws:kms:dsse' as const) : ('aws:kms' as const), SSEKMSKeyId: o.kmsKeyId }
        : o.serverSideEncryption
          ? { ServerSideEncryption: o.serverSideEncryption }
          : {}),
      ...(o.storageClass ? { StorageClass: o.storageClass as StorageClass } : {}),
      ...(o.tagging ? { Tagging: o.tagging } : {}),
    };
  }

  private copySource(fullKey: string): string {
    return `${this.bucket}/${fullKey.split('/').map(encodeURIComponent).join('/')}`;
  }

  // ---- listing ----

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    checkPrefix(prefix, 'list');
    let token: string | undefined;
    const seen = new Set<string>();
    do {
      const page = await this.call('list', prefix, () =>
        this.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.root + prefix, MaxKeys: this.listPageSize, ...(token ? { ContinuationToken: token } : {}) })),
      );
      for (const o of page.Contents ?? []) {
        // Only keys under the prefix asked for: a server that ignores Prefix must not hand a
        // deletion (engine/delete.ts) another backup's objects.
        if (!o.Key?.startsWith(this.root + prefix)) continue;
        const key = o.Key.slice(this.root.length);
        if (key === '' || key.endsWith('/')) continue; // "folder" placeholder objects made by consoles
        yield { key, size: o.Size ?? 0, ...(o.LastModified ? { lastModified: o.LastModified } : {}), ...(o.ETag ? { etag: unquoted(o.ETag) } : {}) };
      }
      token = nextToken(page, seen, this.target(prefix), endpointName(this.options));
    } while (token);
  }

  async listDirectories(prefix: string): Promise<string[]> {
    checkPrefix(prefix, 'listDirectories');
    const out: string[] = [];
    let token: string | undefined;
    const seen = new Set<string>();
    do {
      const page = await this.call('listDirectories', prefix, () =>
        this.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.root + prefix, Delimiter: '/', MaxKeys: this.listPageSize, ...(token ? { ContinuationToken: token } : {}) }),
        ),
      );
      for (const p of page.CommonPrefixes ?? []) {
        if (p.Prefix?.startsWith(this.root + prefix)) out.push(p.Prefix.slice(this.root.length));
      }
      token = nextToken(page, seen, this.target(prefix), endpointName(this.options));
    } while (token);
    return out.sort(compareKeys);
  }

  // ---- reading ----

  async head(key: string): Promise<ObjectInfo | undefined> {
    const Key = this.fullKey(key, 'head');
    try {
      const r = await this.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return { key, size: r.ContentLength ?? 0, ...(r.LastModified ? { lastModified: r.LastModified } : {}) };
    } catch (err) {
      const { reason, status } = errorReason(err);
      if (status === 404 || reason === 'NotFound' || reason === 'NoSuchKey') {
        await this.checkBucket();
        return undefined;
      }
      if (status === 403) {
        // A HEAD response has no body, so no error code: ask with a 1-byte GET what is wrong.
        try {
          const probe = await this.send(new GetObjectCommand({ Bucket: this.bucket, Key, Range: 'bytes=0-0' }));
          (probe.Body as Readable | undefined)?.destroy();
        } catch (probeErr) {
          const probeReason = errorReason(probeErr).reason;
          if (probeReason === 'NoSuchKey') return undefined;
          if (probeReason !== 'InvalidRange') throw await this.translate(probeErr, 'head', key);
        }
      }
      throw await this.translate(err, 'head', key);
    }
  }

  async folderAbove(key: string): Promise<string | undefined> {
    checkKey(key, 'head');
    const segments = this.prefix.split('/');
    // Nearest first: for a/b/c, a/b then a (a bucket's root holds no backup: prefixes are non-empty).
    const folders = segments.slice(1).map((_, i) => segments.slice(0, segments.length - 1 - i).join('/'));
    const held = await Promise.all(
      folders.map((folder) => this.send(new HeadObjectCommand({ Bucket: this.bucket, Key: `${folder}/${key}` })).then(() => true, () => false)),
    );
    const nearest = held.indexOf(true);
    return nearest < 0 ? undefined : `s3://${this.bucket}/${folders[nearest]}`;
  }

  get(key: string, range?: ByteRange): Promise<Readable> {
    return this.open(key, range);
  }

  async readInto(key: string, size: number, sink: ChunkSink): Promise<void> {
    const Key = this.fullKey(key, 'get');
    if (size === 0) return;
    // A request that cannot be signed (no credentials) is left, with its error, to get().
    const signed = await signedRequest(this.client, new GetObjectCommand({ Bucket: this.bucket, Key })).catch(() => undefined);
    await this.direct.read(signed?.url, { length: size, ...(signed ? { headers: signed.headers } : {}) }, sink, {
      resumed: (reason) => this.options.onRetry?.({ attempt: 1, maxAttempts: this.maxAttempts, reason: `resume GET: ${reason}`, delayMs: 0 }),
      rest: (start, etag) => this.open(key, start > 0 ? { start, end: size - 1 } : undefined, etag),
    });
  }

  /**
   * A ranged GET must be answered 206. A proxy or server that ignores Range answers 200 with the
   * whole object, whose first bytes would then be taken for the range's: refused, named.
   */
  private checkPartial(answer: { $metadata: { httpStatusCode?: number } }, body: Readable | undefined, target: string): void {
    const status = answer.$metadata.httpStatusCode;
    if (status === undefined || status === 206) return;
    body?.destroy();
    throw new StoreError('Failed', `get ${target}: the server ignored the Range header (HTTP ${status} instead of 206): a proxy in front of the store may drop it`, { operation: 'get', target, status });
  }

  /** get(), optionally pinned to an ETag (If-Match) from the start. */
  private async open(key: string, range?: ByteRange, ifMatch?: string): Promise<Readable> {
    const Key = this.fullKey(key, 'get');
    if (range) checkRange(range, 'get', this.target(key));
    const first = await this.call('get', key, () =>
      this.send(new GetObjectCommand({ Bucket: this.bucket, Key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}), ...(ifMatch ? { IfMatch: ifMatch } : {}) })),
    );
    const body = first.Body as Readable;
    const target = this.target(key);
    if (range) this.checkPartial(first, body, target);
    const length = first.ContentLength;
    if (length === undefined) return body;
    const start = range?.start ?? 0;
    return Readable.from(
      resumingBody(body, {
        length,
        maxAttempts: this.maxAttempts,
        retryable: isBrokenRead,
        beforeResume: async (n, err) => {
          const delayMs = backoffMs(n);
          const e = err as { code?: string; name?: string };
          this.options.onRetry?.({ attempt: n + 1, maxAttempts: this.maxAttempts, reason: `resume GET: ${e?.code ?? e?.name ?? 'error'}`, delayMs });
          await this.pause(delayMs);
        },
        reopen: async (offset) => {
          const next = await this.call('get', key, () =>
            this.send(new GetObjectCommand({ Bucket: this.bucket, Key, Range: `bytes=${start + offset}-${start + length - 1}`, ...(first.ETag ? { IfMatch: first.ETag } : {}) })),
          );
          this.checkPartial(next, next.Body as Readable, target);
          return next.Body as Readable;
        },
        giveUp: async (err, received, resumes) => {
          const failed = await this.translate(err, 'get', key);
          return new StoreError(failed.code, `${failed.message}${resumeState(received, length, resumes)}`, {
            operation: 'get', target, ...(failed.backendCode ? { backendCode: failed.backendCode } : {}), cause: err,
          });
        },
        tooLong: () => new StoreError('SizeMismatch', `get ${target}: the server sent more than the ${length} bytes it announced`, { operation: 'get', target }),
      }),
      { objectMode: false },
    );
  }

  // ---- writing ----

  private partSizeFor(size: number): number {
    const needed = Math.ceil(Math.ceil(size / MAX_PARTS) / MiB) * MiB;
    return Math.max(this.partSize, needed);
  }

  /** The flexible checksum of a PutObject: only when one is configured (the SDK adds its default with WHEN_SUPPORTED). */
  private putChecksum(): { ChecksumAlgorithm?: S3ChecksumAlgorithm } {
    return this.options.checksumAlgorithm ? { ChecksumAlgorithm: this.options.checksumAlgorithm } : {};
  }

  /**
   * Sets the SigV4 payload hash of a PutObject/UploadPart: UNSIGNED-PAYLOAD when payloads are not
   * signed, else `sha256` when the caller has it (computed while the body was read); without it
   * the SDK hashes the Buffer body itself.
   */
  private payload<C extends PutObjectCommand | UploadPartCommand>(command: C, sha256?: string): C {
    const value = this.signPayload ? sha256 : 'UNSIGNED-PAYLOAD';
    if (value !== undefined) {
      (command as PutObjectCommand).middlewareStack.add(
        (next) => async (args) => {
          const request = args.request as { headers?: Record<string, string> } | undefined;
          if (request?.headers) request.headers['x-amz-content-sha256'] = value;
          return next(args);
        },
        { step: 'build', name: 'victoriaPayloadHash', override: true },
      );
    }
    return command;
  }

  private checksumParams(): { ChecksumAlgorithm?: S3ChecksumAlgorithm } {
    if (this.options.checksumAlgorithm) return { ChecksumAlgorithm: this.options.checksumAlgorithm };
    // Like lib-storage: with WHEN_SUPPORTED, multipart uploads carry CRC32 part checksums.
    return (this.options.requestChecksumCalculation ?? 'WHEN_SUPPORTED') === 'WHEN_SUPPORTED' ? { ChecksumAlgorithm: 'CRC32' } : {};
  }

  async put(key: string, body: PutBody, size: number): Promise<void> {
    const Key = this.fullKey(key, 'put');
    const target = this.target(key);
    const fail = (code: StoreErrorCode, text: string) => new StoreError(code, `put ${target}: ${text}`, { operation: 'put', target });
    try {
      if (!Number.isSafeInteger(size) || size < 0) throw fail('SizeMismatch', `invalid size ${size}`);
      if (size > MAX_PARTS * MAX_PART_SIZE) throw fail('SizeMismatch', `${size} bytes is more than one S3 object can hold`);
      if (Buffer.isBuffer(body) && body.length !== size) throw fail('SizeMismatch', `the body has ${body.length} bytes, ${size} were announced`);
      const partSize = this.partSizeFor(size);
      if (size <= partSize) {
        // One request, with a Buffer body the SDK can send again on a retry.
        if (Buffer.isBuffer(body)) {
          await this.call('put', key, () => this.send(this.payload(new PutObjectCommand({ Bucket: this.bucket, Key, Body: body, ContentLength: size, ...this.writeParams(), ...this.putChecksum() }))));
          return;
        }
        // Up to a part's size the stream goes into one buffer: a reused part buffer, or for small
        // objects (most files of a backup) one of their size.
        const pool = this.partBuffers;
        const pooled = partSize === pool.bufferSize && size > SMALL_PUT;
        if (pooled) pool.enter();
        try {
          const buf = pooled ? pool.takeOwn() : Buffer.allocUnsafe(size);
          const hash = this.signPayload ? createHash('sha256') : undefined;
          const data = await readExactly(body, size, buf, hash, fail);
          await this.call('put', key, () =>
            this.send(this.payload(new PutObjectCommand({ Bucket: this.bucket, Key, Body: data, ContentLength: size, ...this.writeParams(), ...this.putChecksum() }), hash?.digest('hex'))),
          );
          if (pooled) pool.giveOwn(buf);
        } finally {
          if (pooled) pool.leave();
        }
        return;
      }
      await this.multipartPut(Key, body, size, partSize, fail);
    } catch (err) {
      if (body instanceof Readable) body.destroy(err as Error);
      throw await this.translate(err, 'put', key);
    }
  }

  /**
   * A multipart upload with at most `queueSize` parts in flight. Parts of a Buffer body are views
   * of it. A stream is copied into part buffers: the first one belongs to this upload, further
   * ones come from the store-wide pool (`uploadBufferBytes`) when one is free, otherwise the upload
   * waits for one of its own parts to finish. Memory for stream uploads is therefore bounded by
   * (concurrent multipart uploads × partSize) + uploadBufferBytes, and no upload waits on another.
   * Every part is a Buffer, so the SDK retries failed parts; when a part fails for good, the rest
   * are awaited and the upload is aborted (nothing left to pay for, the previous object stays).
   */
  private async multipartPut(Key: string, body: PutBody, size: number, partSize: number, fail: (code: StoreErrorCode, text: string) => StoreError): Promise<void> {
    const startedAt = Date.now();
    const checksum = this.checksumParams();
    const pool = this.partBuffers;
    const usePool = !Buffer.isBuffer(body) && partSize === pool.bufferSize;
    const queue = new PartQueue({
      size,
      partSize,
      queueSize: this.queueSize,
      pool,
      usePool,
      signPayload: this.signPayload,
      upload: (UploadId, partNumber, data, sha256) =>
        this.send(this.payload(new UploadPartCommand({ Bucket: this.bucket, Key, UploadId, PartNumber: partNumber, Body: data, ContentLength: data.length, ...checksum }), sha256)),
    });
    if (usePool) pool.enter();
    let UploadId: string | undefined;
    const creating = this.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key, ...this.writeParams(), ...checksum })).then((r) => r.UploadId!);
    const forget = this.openUploads.track(Key, creating);
    try {
      UploadId = await creating;
      if (Buffer.isBuffer(body)) await queue.sendBuffer(UploadId, body);
      else await queue.sendStream(UploadId, body, fail);
      await this.completeUpload(Key, UploadId, await queue.allParts(), size, startedAt);
    } catch (err) {
      await queue.abandon(err);
      if (UploadId) await this.abortUpload(Key, UploadId);
      throw err;
    } finally {
      forget();
      if (usePool) pool.leave();
    }
  }

  /** CompleteMultipartUpload of `parts`, the upload started at `startedAt` (for completedAnyway). */
  private async completeUpload(Key: string, UploadId: string, parts: CompletedPart[], size: number, startedAt: number): Promise<void> {
    try {
      await this.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId, MultipartUpload: { Parts: parts } }));
    } catch (err) {
      // A Complete that succeeded but whose answer was lost is answered NoSuchUpload when retried.
      if (errorReason(err).reason === 'NoSuchUpload' && (await this.completedAnyway(Key, size, parts.length, startedAt))) return;
      throw err;
    }
  }

  /**
   * One AbortMultipartUpload (with the SDK's retries) within ABORT_UPLOAD_MS of its own: it runs
   * after a failure, often the store's signal ending the upload, which must not cancel the abort
   * too; and a store that is down must not hold the failure back for long. Gives up quietly: the
   * original error is what matters, and a bucket lifecycle rule (docs/storage.md) removes the rest.
   */
  private async abortUpload(Key: string, UploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId }), { abortSignal: AbortSignal.timeout(ABORT_UPLOAD_MS) });
    } catch {
      // NoSuchUpload included: already completed or aborted.
    }
  }

  /** After NoSuchUpload on a retried Complete: is the object there, the size right, and the ETag one of N parts written since we started? */
  private async completedAnyway(Key: string, size: number, parts: number, startedAt: number): Promise<boolean> {
    try {
      const r = await this.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      const fresh = r.LastModified !== undefined && r.LastModified.getTime() >= startedAt - 15 * 60_000;
      return r.ContentLength === size && unquoted(r.ETag ?? '').endsWith(`-${parts}`) && fresh;
    } catch {
      return false;
    }
  }

  async copy(fromKey: string, toKey: string, size: number, ifMatch?: string): Promise<void> {
    const from = this.fullKey(fromKey, 'copy');
    const to = this.fullKey(toKey, 'copy');
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new StoreError('SizeMismatch', `copy ${this.target(fromKey)}: invalid size ${size}`, { operation: 'copy', target: this.target(fromKey) });
    }
    if (size > this.multipartCopyThreshold) return this.multipartCopy(fromKey, from, toKey, to, size, ifMatch);
    await this.call('copy', fromKey, () =>
      this.send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: to,
          CopySource: this.copySource(from),
          // The server refuses (412) a source replaced since the caller listed it.
          ...(ifMatch ? { CopySourceIfMatch: `"${ifMatch}"` } : {}),
          MetadataDirective: 'COPY',
          // A copy takes the source's tags unless told otherwise; with tagging set, every object
          // of a backup carries the current tags, copied or uploaded.
          ...(this.options.tagging ? { TaggingDirective: 'REPLACE' as const } : {}),
          ...this.writeParams(),
          ...(this.options.checksumAlgorithm ? { ChecksumAlgorithm: this.options.checksumAlgorithm } : {}),
        }),
      ),
    );
  }

  private copyPartSizeFor(size: number): number {
    const needed = Math.ceil(Math.ceil(size / MAX_PARTS) / MiB) * MiB;
    return Math.min(MAX_PART_SIZE, Math.max(this.copyPartSize, needed));
  }

  private async multipartCopy(fromKey: string, from: string, toKey: string, to: string, size: number, ifMatch: string | undefined): Promise<void> {
    const head = await this.call('copy', fromKey, () => this.send(new HeadObjectCommand({ Bucket: this.bucket, Key: from })));
    if (head.ContentLength !== size) {
      throw new StoreError('SizeMismatch', `copy ${this.target(fromKey)}: the object has ${head.ContentLength} bytes, ${size} were expected`, { operation: 'copy', target: this.target(fromKey) });
    }
    // The parts below are pinned to the ETag of this HEAD; that it is the version asked for is ours to check.
    if (ifMatch !== undefined && unquoted(head.ETag ?? '') !== ifMatch) {
      throw new StoreError('Changed', `copy ${this.target(fromKey)}: the object was replaced (its ETag is ${head.ETag ?? 'not given'}, ${ifMatch} was expected)`, { operation: 'copy', target: this.target(fromKey) });
    }
    const partSize = this.copyPartSizeFor(size);
    const ranges: Array<{ start: number; end: number }> = [];
    for (let start = 0; start < size; start += partSize) ranges.push({ start, end: Math.min(size, start + partSize) - 1 });
    const startedAt = Date.now();
    const creating = this.call('copy', toKey, () =>
      this.send(
        new CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key: to,
          ...this.writeParams(),
          ...(this.options.checksumAlgorithm ? { ChecksumAlgorithm: this.options.checksumAlgorithm } : {}),
        }),
      ),
    ).then((r) => r.UploadId!);
    const forget = this.openUploads.track(to, creating);
    let UploadId: string;
    try {
      UploadId = await creating;
    } catch (err) {
      forget();
      throw err;
    }
    try {
      const parts = new Array<CompletedPart>(ranges.length);
      await forEachLimit(ranges.keys(), this.copyQueueSize, async (i) => {
        const r = ranges[i]!;
        const res = await this.send(
          new UploadPartCopyCommand({
            Bucket: this.bucket,
            Key: to,
            UploadId,
            PartNumber: i + 1,
            CopySource: this.copySource(from),
            CopySourceRange: `bytes=${r.start}-${r.end}`,
            ...(head.ETag ? { CopySourceIfMatch: head.ETag } : {}),
          }),
        );
        parts[i] = completedPart(i + 1, res.CopyPartResult);
      });
      await this.completeUpload(to, UploadId, parts, size, startedAt);
    } catch (err) {
      await this.abortUpload(to, UploadId);
      throw await this.translate(err, 'copy', fromKey);
    } finally {
      forget();
    }
  }

  /**
   * Aborts every multipart upload and copy this store has open, for a process about to exit on an
   * interrupt (cli/interrupt.ts); the puts and copies they belong to fail. Returns how many.
   */
  async abortOpenUploads(): Promise<number> {
    const open = await this.openUploads.take();
    await Promise.all(open.map((u) => this.abortUpload(u.Key, u.UploadId)));
    return open.length;
  }

  // ---- deleting ----

  async delete(keys: string[]): Promise<void> {
    const full = [...new Set(keys.map((k) => this.fullKey(k, 'delete')))];
    const batches: string[][] = [];
    for (let i = 0; i < full.length; i += this.deleteBatchSize) batches.push(full.slice(i, i + this.deleteBatchSize));
    await forEachLimit(batches, 4, (batch) => this.deleteBatch(batch));
  }

  private async deleteBatch(batch: string[]): Promise<void> {
    let pending = batch;
    for (let round = 0; pending.length > 0; round++) {
      let result;
      try {
        result = await this.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: pending.map((Key) => ({ Key })), Quiet: true } }));
      } catch (err) {
        const reason = errorReason(err).reason;
        // Some S3-compatible servers lack DeleteObjects, or want Content-MD5 the SDK no longer sends.
        if (reason === 'NotImplemented' || reason === 'MissingContentMD5' || reason === 'InvalidDigest') return this.deleteOneByOne(pending);
        throw await this.translate(err, 'delete', pending.length === 1 ? pending[0]!.slice(this.root.length) : `${pending[0]!.slice(this.root.length)} and ${pending.length - 1} more`);
      }
      const errors = (result.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (errors.length === 0) return;
      const transient = errors.every((e) => ['InternalError', 'SlowDown', 'ServiceUnavailable', 'OperationAborted', 'RequestTimeout'].includes(e.Code ?? ''));
      if (!transient || round + 1 >= this.maxAttempts) {
        const first = errors[0]!;
        const key = (first.Key ?? '').slice(this.root.length);
        const err = Object.assign(new Error(first.Message ?? first.Code ?? 'error'), { name: first.Code ?? 'Error', Code: first.Code });
        const translated = await this.translate(err, 'delete', key);
        throw new StoreError(translated.code, `${translated.message}${errors.length > 1 ? ` (and ${errors.length - 1} more key(s) failed)` : ''}`, {
          operation: 'delete', target: this.target(key), backendCode: first.Code ?? 'Error', cause: err,
        });
      }
      const delayMs = backoffMs(round, 500);
      // The code alone is the reason: a key count in it would make each batch a reason of its own (retry-report.ts).
      this.options.onRetry?.({ attempt: round + 1, maxAttempts: this.maxAttempts, reason: `DeleteObjects: ${errors[0]!.Code}`, delayMs });
      await this.pause(delayMs);
      // An error that names no key (only non-compliant servers send one) leaves no way to tell what
      // was deleted: the whole batch goes again (deleting a deleted key is no error).
      pending = errors.every((e) => e.Key) ? errors.map((e) => e.Key!) : pending;
    }
  }

  private async deleteOneByOne(keys: string[]): Promise<void> {
    await forEachLimit(keys, 8, async (Key) => {
      await this.call('delete', Key.slice(this.root.length), () => this.send(new DeleteObjectCommand({ Bucket: this.bucket, Key })));
    });
  }
}

/** Read a stream of exactly `size` bytes into `into` (at least `size` long), hashing on the way; the filled view. */
async function readExactly(body: AsyncIterable<unknown>, size: number, into: Buffer, hash: Hash | undefined, fail: (code: StoreErrorCode, text: string) => StoreError): Promise<Buffer> {
  let n = 0;
  for await (const chunk of body) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    if (n + buf.length > size) throw fail('SizeMismatch', `the body is longer than the ${size} bytes announced`);
    buf.copy(into, n);
    hash?.update(buf);
    n += buf.length;
  }
  if (n !== size) throw fail('SizeMismatch', `the body ended after ${n} of the ${size} bytes announced`);
  return into.subarray(0, size);
}
