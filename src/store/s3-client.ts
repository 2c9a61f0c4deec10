/**
 * How an S3Store's options become an S3Client: the options themselves and their defaults, their
 * checks (each failure a Config error naming the option), the CA bundle, the credentials (explicit,
 * a Velero credentials file, or the SDK's default chain), the region, our retry strategy and the
 * connection timeouts.
 */
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { fromIni } from '@aws-sdk/credential-provider-ini';
import { loadConfig } from '@smithy/core/config';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { StoreError } from './errors.js';
import { PersistentRetryStrategy, type RetryEvent } from './s3-retry.js';
import { isWebPage } from './web-page.js';

export const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** S3 limits. */
export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PART_SIZE = 5 * GiB;
export const MAX_DELETE_BATCH = 1000;

export type ChecksumMode = 'WHEN_SUPPORTED' | 'WHEN_REQUIRED';
/** S3's server-side encryption modes: S3-managed keys, KMS, and KMS with dual-layer encryption. */
export type ServerSideEncryption = 'AES256' | 'aws:kms' | 'aws:kms:dsse';
export const SERVER_SIDE_ENCRYPTIONS: readonly ServerSideEncryption[] = ['AES256', 'aws:kms', 'aws:kms:dsse'];
export type S3ChecksumAlgorithm = 'CRC32' | 'CRC32C' | 'SHA1' | 'SHA256';
export const S3_CHECKSUM_ALGORITHMS: readonly S3ChecksumAlgorithm[] = ['CRC32', 'CRC32C', 'SHA1', 'SHA256'];

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** How to reach and write to an S3 bucket: everything but the bucket and prefix. */
export interface S3Options {
  /** S3-compatible endpoint, e.g. `http://minio:9000`; default: AWS. */
  endpoint?: string;
  /** Path-style URLs (`endpoint/bucket/key`); default: true with a custom endpoint, false for AWS. */
  forcePathStyle?: boolean;
  /**
   * Default: AWS_REGION / AWS_DEFAULT_REGION, then the profile's `region`, then us-east-1. Without a
   * custom endpoint a wrong region is corrected by following S3's region redirects.
   */
  region?: string;

  /** Explicit credentials. Otherwise `credentialsFile`, otherwise the SDK's default chain (env, SSO, web identity/IRSA, shared files, process, ECS/EC2 metadata). */
  credentials?: S3Credentials;
  /** Profile in the shared files or `credentialsFile` (velero-plugin-for-aws: `profile`, default "default"). */
  profile?: string;
  /** A shared-credentials file (also read as the config file, as velero-plugin-for-aws does); only this file is used. */
  credentialsFile?: string;
  /** What `credentialsFile` is a copy of, for messages (a Velero location's Secret key): the copy's temporary path means nothing to a user. */
  credentialsSource?: string;

  /** PEM bundle of extra CAs to trust (added to Node's roots). */
  caCert?: string;
  /** The same, from a file. */
  caCertFile?: string;
  insecureSkipTLSVerify?: boolean;

  /** Server-side encryption for written objects. `kmsKeyId` alone implies `aws:kms`. */
  serverSideEncryption?: ServerSideEncryption;
  kmsKeyId?: string;
  /** e.g. STANDARD, STANDARD_IA, INTELLIGENT_TIERING. Archive classes need an S3 restore before reading. */
  storageClass?: string;
  /**
   * Tags for every object written (puts, multipart uploads and copies), in S3's query format
   * `key1=value1&key2=value2`: velero-plugin-for-aws's `tagging`, sent as given so that our objects
   * carry the same tags as Velero's (for lifecycle rules and cost reports). Writing needs
   * s3:PutObjectTagging besides s3:PutObject.
   */
  tagging?: string;
  /** The flexible checksum to send with uploads (default with WHEN_SUPPORTED: CRC32). */
  checksumAlgorithm?: S3ChecksumAlgorithm;
  /** Default WHEN_SUPPORTED. */
  requestChecksumCalculation?: ChecksumMode;
  /** Default WHEN_SUPPORTED. moto needs WHEN_REQUIRED to read copies of multipart objects. */
  responseChecksumValidation?: ChecksumMode;

  /**
   * Sign request bodies (SigV4 `x-amz-content-sha256` = the body's SHA-256) on PutObject and
   * UploadPart. Default: over http:// yes, the signature is then all that protects the bytes on
   * the wire; over https:// no (`UNSIGNED-PAYLOAD`): TLS already guarantees their integrity, as the
   * AWS SDKs reason, and hashing every byte a second time costs CPU. Either way our manifest's
   * SHA-256 of every file is checked on restore.
   */
  signPayload?: boolean;
  /** Multipart part size, ≥ 5 MiB (default 8 MiB); raised automatically to stay within 10000 parts. */
  partSize?: number;
  /** Parts in flight per put (default 4). */
  queueSize?: number;
  /**
   * Memory shared by all parallel stream uploads of this store for part buffers beyond each
   * upload's first (default 24 MiB). Memory for stream uploads ≤ (parallel puts reading their
   * body × partSize) + uploadBufferBytes; a put of a Buffer uses no extra memory.
   */
  uploadBufferBytes?: number;
  /** Copies of objects larger than this use UploadPartCopy (default 5 GiB, the CopyObject limit). */
  multipartCopyThreshold?: number;
  /** Part size of multipart copies (default 512 MiB, ≥ 5 MiB, ≤ 5 GiB). */
  copyPartSize?: number;
  /** UploadPartCopy requests in parallel (default 4). */
  copyQueueSize?: number;
  /** ListObjectsV2 MaxKeys (default 1000). */
  listPageSize?: number;
  /** Keys per DeleteObjects request (default and maximum 1000). */
  deleteBatchSize?: number;

  /** Attempts per request, and per resumed download (default 10). */
  maxAttempts?: number;
  /** A request fails when its socket is idle this long (default 120 s). */
  socketTimeoutMs?: number;
  /** Told about every retry (for logs and tests). */
  onRetry?: (event: RetryEvent) => void;
}

export interface S3StoreOptions extends S3Options {
  bucket: string;
  /** Non-empty, no leading or trailing `/`. */
  prefix: string;
}

export const DEFAULTS = {
  partSize: 8 * MiB,
  queueSize: 4,
  // (queueSize - 1) × partSize: an upload running alone can fill its queue.
  uploadBufferBytes: 24 * MiB,
  multipartCopyThreshold: 5 * GiB,
  copyPartSize: 512 * MiB,
  copyQueueSize: 4,
  listPageSize: 1000,
  deleteBatchSize: 1000,
  maxAttempts: 10,
  socketTimeoutMs: 120_000,
};

/** TCP/TLS connect timeout, and connections per store at most (no caller needs others). */
const CONNECTION_TIMEOUT_MS = 10_000;
const MAX_SOCKETS = 32;

export function configError(message: string): StoreError {
  return new StoreError('Config', message, { operation: 'open' });
}

export function positive(name: string, value: number | undefined, fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min || value > max) throw configError(`S3 option ${name} must be an integer from ${min} to ${max}, got ${value}`);
  return value;
}

/** Characters S3 allows in tag keys and values. */
const TAG_TEXT = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

/**
 * Checks a tag set in query format against S3's limits (at most 10 tags, unique keys of 1 to 128
 * characters, values up to 256, letters, digits, spaces and `+ - = . _ : / @`), so that a typo fails
 * when the store is opened, naming the tag, rather than as InvalidTag on the first upload. S3 reads
 * the set as URL query parameters: `%XX` escapes, and `+` for a space.
 */
export function checkTagging(tagging: string): void {
  const bad = (why: string) => configError(`tagging ${JSON.stringify(tagging)}: ${why} (expected key1=value1&key2=value2, URL-encoded)`);
  const keys = new Set<string>();
  for (const pair of tagging.split('&')) {
    const eq = pair.indexOf('=');
    if (eq < 0) throw bad(`${JSON.stringify(pair)} has no "="`);
    let key: string;
    let value: string;
    try {
      key = decodeURIComponent(pair.slice(0, eq).replace(/\+/g, ' '));
      value = decodeURIComponent(pair.slice(eq + 1).replace(/\+/g, ' '));
    } catch {
      throw bad(`${JSON.stringify(pair)} has an invalid %-escape`);
    }
    if ([...key].length < 1 || [...key].length > 128) throw bad(`tag key ${JSON.stringify(key)} must have 1 to 128 characters`);
    if ([...value].length > 256) throw bad(`the value of tag ${key} has more than 256 characters`);
    if (!TAG_TEXT.test(key) || !TAG_TEXT.test(value)) throw bad(`tag ${key} has a character S3 does not allow (letters, digits, spaces and + - = . _ : / @ are allowed)`);
    if (keys.has(key)) throw bad(`tag key ${key} appears twice`);
    keys.add(key);
  }
  if (keys.size > 10) throw bad(`${keys.size} tags, S3 allows at most 10 per object`);
}

/** The PEM bundle from caCert and caCertFile, or undefined. */
export function loadCa(options: S3Options): string[] | undefined {
  return caBundle(options.caCert, options.caCertFile, { inline: 'caCert', file: 'the CA bundle caCertFile' });
}

/**
 * PEM certificates given inline and/or as a file, checked to be PEM; `names` says how the user gave
 * them, for messages. Undefined when neither is given.
 */
export function caBundle(inline: string | undefined, file: string | undefined, names: { inline: string; file: string }): string[] | undefined {
  const pems: Array<[string, string]> = [];
  if (inline) pems.push([inline, names.inline]);
  if (file) {
    try {
      pems.push([readFileSync(file, 'utf8'), names.file]);
    } catch (err) {
      throw configError(`cannot read ${names.file} ${file}: ${(err as Error).message}`);
    }
  }
  for (const [pem, name] of pems) {
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw configError(`${name} is not a PEM certificate bundle (no "-----BEGIN CERTIFICATE-----" line)`);
  }
  return pems.length > 0 ? pems.map(([pem]) => pem) : undefined;
}

/**
 * The CERTIFICATE blocks of a PEM bundle, and nothing else. A bundle pasted from a server's files
 * may hold its private key too; what goes on to other pods (the restore's init container, in the
 * application's namespace) must not.
 */
export function certificatesOnly(pem: string): string {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).join('\n') + '\n';
}

/** What the SDK client and the direct reads (direct-get.ts) share: the CA bundle is read once. */
export interface TransportSettings {
  ca: string[] | undefined;
  socketTimeoutMs: number;
}

/**
 * An endpoint URL (the S3 endpoint, or a location's publicUrl for presigned URLs) checked and
 * without trailing slashes; `fail` makes the error, named `name`.
 */
export function endpointUrl(name: string, value: string, fail: (message: string) => StoreError): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw fail(`${name} ${JSON.stringify(value)} is not a URL (expected http://host:port or https://host)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw fail(`${name} ${value} must start with http:// or https://`);
  if (url.username || url.password) throw fail(`${name} must not contain credentials`);
  return value.replace(/\/+$/, '');
}

/** An S3 client with our retry strategy, timeouts and TLS settings. */
export function s3Client(options: S3Options, { ca, socketTimeoutMs }: TransportSettings): S3Client {
  const maxAttempts = positive('maxAttempts', options.maxAttempts, DEFAULTS.maxAttempts, 1, 100);
  const endpoint = options.endpoint ? endpointUrl('S3 endpoint', options.endpoint, configError) : undefined;
  if (options.kmsKeyId && options.serverSideEncryption === 'AES256') {
    throw configError('kmsKeyId needs serverSideEncryption aws:kms or aws:kms:dsse, not AES256');
  }
  if (options.serverSideEncryption && !SERVER_SIDE_ENCRYPTIONS.includes(options.serverSideEncryption)) {
    throw configError(`serverSideEncryption must be one of ${SERVER_SIDE_ENCRYPTIONS.join(', ')}, got ${JSON.stringify(options.serverSideEncryption)}`);
  }
  if (options.checksumAlgorithm && !S3_CHECKSUM_ALGORITHMS.includes(options.checksumAlgorithm)) {
    throw configError(`checksumAlgorithm must be one of ${S3_CHECKSUM_ALGORITHMS.join(', ')}, got ${JSON.stringify(options.checksumAlgorithm)}`);
  }
  for (const mode of ['requestChecksumCalculation', 'responseChecksumValidation'] as const) {
    const v = options[mode];
    if (v !== undefined && v !== 'WHEN_SUPPORTED' && v !== 'WHEN_REQUIRED') throw configError(`${mode} must be WHEN_SUPPORTED or WHEN_REQUIRED, got ${JSON.stringify(v)}`);
  }

  const agentOptions = { keepAlive: true, maxSockets: MAX_SOCKETS };
  const httpsAgent = new https.Agent({
    ...agentOptions,
    rejectUnauthorized: !options.insecureSkipTLSVerify,
    ...(ca ? { ca: [...rootCertificates, ...ca] } : {}),
  });
  const httpAgent = new http.Agent(agentOptions);

  const fileInit = options.credentialsFile ? { filepath: options.credentialsFile, configFilepath: options.credentialsFile } : {};
  const profile = options.profile || undefined;
  let credentials: S3ClientConfig['credentials'];
  if (options.credentials) {
    const { accessKeyId, secretAccessKey, sessionToken } = options.credentials;
    if (!accessKeyId || !secretAccessKey) throw configError('S3 credentials need both an access key id and a secret access key');
    credentials = { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
  } else if (options.credentialsFile) {
    credentials = fromIni({ ...fileInit, ...(profile ? { profile } : {}) });
  }

  const region: S3ClientConfig['region'] = options.region
    ? options.region
    : loadConfig<string>(
        {
          environmentVariableSelector: (env) => env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined,
          configFileSelector: (p) => p.region,
          default: () => 'us-east-1',
        },
        { ...fileInit, ...(profile ? { profile } : {}) },
      );

  const client = new S3Client({
    region,
    ...(endpoint ? { endpoint } : {}),
    forcePathStyle: options.forcePathStyle ?? endpoint !== undefined,
    followRegionRedirects: endpoint === undefined,
    ...(credentials ? { credentials } : {}),
    ...(profile ? { profile } : {}),
    maxAttempts,
    retryStrategy: new PersistentRetryStrategy({ maxAttempts, ...(options.onRetry ? { onRetry: options.onRetry } : {}) }),
    requestChecksumCalculation: options.requestChecksumCalculation ?? 'WHEN_SUPPORTED',
    responseChecksumValidation: options.responseChecksumValidation ?? 'WHEN_SUPPORTED',
    requestHandler: new NodeHttpHandler({
      httpAgent,
      httpsAgent,
      connectionTimeout: CONNECTION_TIMEOUT_MS,
      socketTimeout: socketTimeoutMs,
    }),
  });
  // Innermost (the deserialize step, low priority): it sees the raw answer before the SDK parses it.
  client.middlewareStack.add((next) => async (args) => rejectWebPage(await next(args)), { step: 'deserialize', priority: 'low', name: 'victoriaRejectWebPage' });
  return client;
}

/** The error a 2xx web page becomes; translateS3Error names it (reason `WebPage`). */
export class WebPageError extends Error {
  override readonly name = 'WebPage';
  readonly $metadata: { httpStatusCode: number };

  constructor(readonly contentType: string, status: number) {
    super(`a web page (Content-Type ${contentType}) instead of an S3 answer`);
    this.$metadata = { httpStatusCode: status };
  }
}

/**
 * A successful answer that is a web page (web-page.ts), taken as success, would read as an
 * existing complete marker, a damaged manifest, an empty listing or, worst, an upload that landed;
 * so every command refuses it. A HEAD's Content-Length is the page's. Error statuses with HTML
 * bodies (a proxy's 502 page) stay what they are, and retryable.
 */
function rejectWebPage<T extends { response: unknown }>(result: T): T {
  const response = result.response as { statusCode?: number; headers?: Record<string, string>; body?: { destroy?: () => void } };
  const status = response.statusCode ?? 0;
  const header = (wanted: string) => Object.entries(response.headers ?? {}).find(([name]) => name.toLowerCase() === wanted)?.[1];
  const type = header('content-type');
  if (status < 200 || status > 299 || !isWebPage(type, header('content-length'))) return result;
  response.body?.destroy?.();
  throw new WebPageError(type!, status);
}
