/**
 * Opening a store from its location (`s3://bucket/prefix`, `file:///abs/dir`), and S3 options from
 * a Velero BackupStorageLocation's `spec.config` in velero-plugin-for-aws's keys.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StoreError } from './errors.js';
import { FileStore, type FileStoreOptions } from './file.js';
import { checkKey } from './keys.js';
import { S3Store } from './s3.js';
import { checkTagging, S3_CHECKSUM_ALGORITHMS, SERVER_SIDE_ENCRYPTIONS, type S3ChecksumAlgorithm, type S3Options, type ServerSideEncryption } from './s3-client.js';
import type { ObjectStore } from './types.js';

export type StoreLocation = { kind: 's3'; bucket: string; prefix: string } | { kind: 'file'; path: string };

export interface OpenStoreOptions {
  s3?: S3Options;
  file?: FileStoreOptions;
}

function invalid(root: string, why: string): StoreError {
  return new StoreError('InvalidKey', `invalid store location ${JSON.stringify(root)}: ${why}`, { operation: 'open', target: root });
}

const WHY_PREFIX =
  'backups need a non-empty prefix, as in s3://bucket/victoria-backups. vmbackup\'s layout cannot live at a bucket root ' +
  '(stock vmbackup refuses "s3://bucket" and writes keys starting with "/" for "s3://bucket/"), and in a bucket Velero uses, ' +
  'plugin data must stay under <bsl-prefix>/plugins/ (Velero marks a location Unavailable when other folders appear)';

/** Parse without opening. Throws StoreError('InvalidKey') with the reason. */
export function parseStoreLocation(root: string): StoreLocation {
  if (root.startsWith('s3://')) {
    const rest = root.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    if (!bucket) throw invalid(root, 'no bucket name (expected s3://bucket/prefix)');
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(bucket)) throw invalid(root, `${JSON.stringify(bucket)} is not a bucket name`);
    if (slash < 0) throw invalid(root, `no prefix: ${WHY_PREFIX}`);
    const prefix = rest.slice(slash + 1).replace(/\/+$/, '');
    if (!prefix) throw invalid(root, `the bucket root is not a backup location: ${WHY_PREFIX}`);
    if (/[?#]/.test(prefix)) throw invalid(root, 'the prefix must not contain "?" or "#"');
    try {
      checkKey(prefix, 'open');
    } catch (err) {
      throw invalid(root, `bad prefix: ${(err as Error).message.replace(/^open: /, '')}`);
    }
    return { kind: 's3', bucket, prefix };
  }
  if (root.startsWith('file:')) {
    // A URL's query and fragment are not part of its path: file:///b/vm#1 would be /b/vm, shared
    // with every other `#…` root there.
    if (/[?#]/.test(root)) throw invalid(root, 'a "?" or "#" would end the path here: write it as %3F or %23');
    // WHATWG URL parsing makes file:./backups and file:backups into /backups: a relative path the
    // user meant would silently become one at the file system root.
    if (!root.startsWith('file://')) throw invalid(root, 'expected file:///absolute/dir, with three slashes (for a directory here: file://$PWD/dir)');
    let path: string;
    try {
      path = fileURLToPath(root);
    } catch (err) {
      const message = (err as Error).message;
      if (/URI malformed/.test(message)) throw invalid(root, 'a "%" must start an escape such as %20: write a "%" itself as %25');
      throw invalid(root, `not an absolute local file URL (expected file:///abs/dir): ${message}`);
    }
    path = resolve(path);
    if (path === '/') throw invalid(root, 'the file system root is not a backup location: name a directory, e.g. file:///var/backups/victoria');
    return { kind: 'file', path };
  }
  throw invalid(root, 'expected s3://bucket/prefix or file:///absolute/dir');
}

/** Open the store at `root`. Nothing is contacted yet: errors in the S3 settings surface here, network errors on first use. */
export function openStore(root: string, options: OpenStoreOptions = {}): ObjectStore {
  const loc = parseStoreLocation(root);
  if (loc.kind === 's3') return new S3Store({ ...options.s3, bucket: loc.bucket, prefix: loc.prefix });
  return new FileStore(loc.path, options.file);
}

// ---- Velero BackupStorageLocation config (velero-plugin-for-aws keys) ----

export interface BslS3Options {
  options: S3Options;
  /** `publicUrl`: the endpoint to put into presigned URLs handed to other pods, if set. */
  publicUrl?: string;
  /** Keys that were accepted but have no effect here; worth a log line. */
  warnings: string[];
}

/** Go's strconv.ParseBool, which velero-plugin-for-aws uses. */
function parseBool(key: string, value: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  throw new StoreError('Config', `could not parse BackupStorageLocation config ${key} (expected bool): ${JSON.stringify(value)}`, { operation: 'open' });
}

const IGNORED_SILENTLY = new Set(['bucket', 'prefix', 'enableSharedConfig']);

/**
 * S3 options from a BackupStorageLocation's `spec.config`, as velero-plugin-for-aws reads it, plus
 * the `caCert` (PEM) and `credentialsFile` (path) entries Velero adds for object-store plugins.
 * Pure: reads no files and no environment.
 *
 * `checksumAlgorithm` (velero-plugin-for-aws ≥ 1.10):
 *   - absent: like Velero's default (CRC32): requestChecksumCalculation and responseChecksumValidation
 *     WHEN_SUPPORTED, CRC32 on uploads;
 *   - "" (no checksum, for S3-compatible servers without flexible checksums): both WHEN_REQUIRED,
 *     so only DeleteObjects carries the checksum S3 requires;
 *   - CRC32, CRC32C, SHA1, SHA256: WHEN_SUPPORTED with that algorithm on uploads and copies;
 *   - anything else: an error, as in Velero. That includes CRC64NVME: velero-plugin-for-aws validates
 *     against its AWS SDK's list (service/s3 v1.48), which predates it.
 * `s3ForcePathStyle` absent means false, as in Velero (unlike S3Options' own default for endpoints).
 * `customerKeyEncryptionFile` and `customerKeyEncryptionSecret` (SSE-C) are refused rather than
 * ignored: writing unencrypted objects into a location configured for SSE-C would be a silent
 * downgrade. (Restores could not use SSE-C either: the init container reads through presigned URLs,
 * and an SSE-C read needs the key in its request headers, in the application's namespace.)
 */
export function bslS3Options(config: Readonly<Record<string, string | undefined>>): BslS3Options {
  const options: S3Options = {};
  const warnings: string[] = [];
  let publicUrl: string | undefined;
  const err = (message: string) => new StoreError('Config', `BackupStorageLocation config: ${message}`, { operation: 'open' });

  for (const [key, raw] of Object.entries(config)) {
    if (raw === undefined) continue;
    const value = key === 'caCert' || key === 'checksumAlgorithm' ? raw : raw.trim();
    switch (key) {
      case 'region':
        // The SDK's own refusal ("Region not accepted") names neither the key nor the value.
        if (value && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(value)) throw err(`invalid region ${JSON.stringify(value)}: a region name such as us-east-1 (letters, digits, "-", "_" and ".")`);
        if (value) options.region = value;
        break;
      case 's3Url':
      case 'publicUrl': {
        if (!value) break;
        let ok = false;
        try {
          const u = new URL(value);
          ok = u.protocol === 'http:' || u.protocol === 'https:';
        } catch {
          ok = false;
        }
        // Shown without what comes before an "@": a user and password, written where they do not belong.
        if (!ok) throw err(`invalid ${key} ${JSON.stringify(value.replace(/^([a-z][a-z0-9+.-]*:\/\/)?[^/]*@/i, '$1…@'))}: it must be a URL starting with http:// or https://`);
        if (key === 's3Url') options.endpoint = value;
        else publicUrl = value;
        break;
      }
      case 's3ForcePathStyle':
        if (value) options.forcePathStyle = parseBool(key, value);
        break;
      case 'insecureSkipTLSVerify':
        if (value) options.insecureSkipTLSVerify = parseBool(key, value);
        break;
      case 'caCert':
        if (value.trim()) options.caCert = value;
        break;
      case 'serverSideEncryption':
        if (!value) break;
        if (!(SERVER_SIDE_ENCRYPTIONS as readonly string[]).includes(value)) throw err(`serverSideEncryption must be one of ${SERVER_SIDE_ENCRYPTIONS.join(', ')}, got ${JSON.stringify(value)}`);
        options.serverSideEncryption = value as ServerSideEncryption;
        break;
      case 'kmsKeyId':
        if (value) options.kmsKeyId = value;
        break;
      case 'checksumAlgorithm':
        if (value === '') {
          options.requestChecksumCalculation = 'WHEN_REQUIRED';
          options.responseChecksumValidation = 'WHEN_REQUIRED';
        } else if ((S3_CHECKSUM_ALGORITHMS as readonly string[]).includes(value)) {
          options.requestChecksumCalculation = 'WHEN_SUPPORTED';
          options.responseChecksumValidation = 'WHEN_SUPPORTED';
          options.checksumAlgorithm = value as S3ChecksumAlgorithm;
        } else {
          throw err(`invalid checksumAlgorithm ${JSON.stringify(value)}: use "" (none), ${S3_CHECKSUM_ALGORITHMS.join(', ')}`);
        }
        break;
      case 'profile':
        if (value) options.profile = value;
        break;
      case 'credentialsFile':
        if (value) options.credentialsFile = value;
        break;
      case 'customerKeyEncryptionFile':
      case 'customerKeyEncryptionSecret':
        if (value) throw err(`${key} (SSE-C) is not supported by velero-plugin-victoria; use serverSideEncryption AES256 or aws:kms with kmsKeyId`);
        break;
      case 'signatureVersion':
        if (value && value !== '4') warnings.push(`signatureVersion ${value} is ignored: requests are signed with SigV4`);
        break;
      case 'tagging':
        if (!value) break;
        try {
          checkTagging(value);
        } catch (e) {
          throw err((e as Error).message);
        }
        options.tagging = value;
        break;
      default:
        if (!IGNORED_SILENTLY.has(key)) warnings.push(`unknown key ${key} is ignored`);
    }
  }
  if (options.kmsKeyId && options.serverSideEncryption === 'AES256') {
    // As velero-plugin-for-aws: a KMS key wins, and its objects are written with aws:kms.
    warnings.push('serverSideEncryption AES256 is overridden by kmsKeyId: objects are encrypted with aws:kms and that key, as velero-plugin-for-aws does');
    options.serverSideEncryption = 'aws:kms';
  }
  options.forcePathStyle ??= false;
  return { options, ...(publicUrl ? { publicUrl } : {}), warnings };
}
