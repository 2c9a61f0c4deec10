/**
 * S3 options from a Velero BackupStorageLocation's `spec.config`, in velero-plugin-for-aws's keys:
 * Velero's vocabulary, so here beside the actions rather than in the store. The CLI's S3 flags go
 * through the same mapping (cli/store-flags.ts).
 */
import { StoreError } from '../store/errors.js';
import { checkTagging, S3_CHECKSUM_ALGORITHMS, SERVER_SIDE_ENCRYPTIONS, type S3ChecksumAlgorithm, type S3Options, type ServerSideEncryption } from '../store/s3-client.js';

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
