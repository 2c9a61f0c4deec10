/**
 * The S3 flags shared by the commands that open a store. They are spelled as velero-plugin-for-aws
 * spells its BackupStorageLocation keys and go through the same mapping (bslS3Options), so the CLI
 * and the Velero plugin treat a bucket identically. Credentials come from the AWS environment or
 * profile, never from flags (they would show in `ps` and shell history).
 */
import { type ParseArgsConfig } from 'node:util';
import { bslS3Options } from '../actions/bsl-s3-options.js';
import { openStore, parseStoreLocation } from '../store/url.js';
import type { ObjectStore } from '../store/types.js';
import { UsageError } from '../common/usage-error.js';
import { storeRetries } from './store-retries.js';

export const STORE_FLAGS = {
  's3-endpoint': { type: 'string' },
  's3-force-path-style': { type: 'boolean' },
  'no-s3-force-path-style': { type: 'boolean' },
  region: { type: 'string' },
  sse: { type: 'string' },
  'kms-key-id': { type: 'string' },
  'storage-class': { type: 'string' },
  tagging: { type: 'string' },
  'checksum-algorithm': { type: 'string' },
  'ca-cert-file': { type: 'string' },
  'insecure-skip-tls-verify': { type: 'boolean' },
  profile: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

export const STORE_USAGE = `S3 options (credentials from the AWS environment, profile or shared files):
  --s3-endpoint URL          S3-compatible endpoint (MinIO, Ceph, ...)
  --s3-force-path-style      path-style URLs (endpoint/bucket/key), the default with --s3-endpoint;
                             --no-s3-force-path-style for virtual-hosted URLs (bucket.endpoint/key)
  --region R                 bucket region
  --sse AES256|aws:kms|aws:kms:dsse  server-side encryption; --kms-key-id ID for SSE-KMS
  --storage-class C          e.g. STANDARD_IA
  --tagging 'K=V&K2=V2'      tags on every object written (as the BSL key tagging)
  --checksum-algorithm A     "" (none; for servers that reject the SDK's CRC headers), CRC32, CRC32C, SHA1, SHA256
  --ca-cert-file F           extra CA bundle (PEM); --insecure-skip-tls-verify to skip verification
  --profile P                AWS profile`;

/** `root` is a store location (s3://bucket/prefix, file:///dir), or a UsageError says why not. */
export function checkStoreRoot(root: string): void {
  try {
    parseStoreLocation(root);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

type StoreFlagValues = { [K in keyof typeof STORE_FLAGS]?: (typeof STORE_FLAGS)[K]['type'] extends 'boolean' ? boolean : string };

/** The S3 flags given, as `--name`, but those in `except`: where they would do nothing, they are refused. */
export function givenStoreFlags(flags: StoreFlagValues, except: ReadonlyArray<keyof typeof STORE_FLAGS> = []): string[] {
  return (Object.keys(STORE_FLAGS) as Array<keyof typeof STORE_FLAGS>).filter((f) => !except.includes(f) && flags[f] !== undefined).map((f) => `--${f}`);
}

/**
 * The store at `root` with the S3 flags. What the flags or the root get wrong is a UsageError
 * (exit 2), in flag terms; what the server answers comes later, on first use. Warnings about the
 * flags go to stderr unless `warn` is false.
 */
export function openStoreFromFlags(root: string, flags: StoreFlagValues, opts: { warn?: boolean } = {}): ObjectStore {
  checkStoreRoot(root);
  if (!root.startsWith('s3://')) {
    // Silently ignored, an S3 option (an endpoint, encryption) would look applied when it is not.
    const given = givenStoreFlags(flags);
    if (given.length > 0) throw new UsageError(`${given.join(', ')} ${given.length === 1 ? 'is an S3 option' : 'are S3 options'}, and ${root} is not an s3:// location`);
    return openStore(root);
  }
  if (flags['s3-force-path-style'] && flags['no-s3-force-path-style']) throw new UsageError('give --s3-force-path-style or --no-s3-force-path-style, not both');
  // restore parses with allowNegative, which turns --no-s3-force-path-style into s3-force-path-style false.
  const pathStyle = flags['no-s3-force-path-style'] ? false : flags['s3-force-path-style'];
  const config: Record<string, string | undefined> = {
    s3Url: flags['s3-endpoint'],
    s3ForcePathStyle: pathStyle === undefined ? undefined : String(pathStyle),
    region: flags.region,
    serverSideEncryption: flags.sse,
    kmsKeyId: flags['kms-key-id'],
    checksumAlgorithm: flags['checksum-algorithm'],
    tagging: flags.tagging,
    insecureSkipTLSVerify: flags['insecure-skip-tls-verify'] === undefined ? undefined : String(flags['insecure-skip-tls-verify']),
    profile: flags.profile,
  };
  let parsed: ReturnType<typeof bslS3Options>;
  try {
    parsed = bslS3Options(config);
  } catch (err) {
    throw new UsageError(inFlagTerms((err as Error).message));
  }
  if (opts.warn !== false) for (const warning of parsed.warnings) process.stderr.write(`velero-plugin-victoria: warning: ${inFlagTerms(warning)}\n`);
  const { options } = parsed;
  if (flags['storage-class']) options.storageClass = flags['storage-class'];
  if (flags['ca-cert-file']) options.caCertFile = flags['ca-cert-file'];
  // Flags mirror vmbackup: a custom endpoint defaults to path style unless told otherwise.
  if (flags['s3-endpoint'] && pathStyle === undefined) options.forcePathStyle = true;
  options.onRetry = storeRetries.onRetry;
  return openStore(root, { s3: options });
}

/**
 * The location keys the flags map to, for messages: a CLI user gave --s3-endpoint, not s3Url. Only
 * the keys bslS3Options names in its messages: plain words such as region or profile would also
 * match where they are not keys.
 */
const FLAG_OF: Record<string, string> = {
  s3Url: '--s3-endpoint',
  s3ForcePathStyle: '--s3-force-path-style',
  serverSideEncryption: '--sse',
  kmsKeyId: '--kms-key-id',
  checksumAlgorithm: '--checksum-algorithm',
  tagging: '--tagging',
  insecureSkipTLSVerify: '--insecure-skip-tls-verify',
};

/** bslS3Options' message in flag terms; quoted values (the user's own text) are left as they are. */
function inFlagTerms(message: string): string {
  const key = new RegExp(`\\b(${Object.keys(FLAG_OF).join('|')})\\b`, 'g');
  return message
    .replace(/^BackupStorageLocation config: /, '')
    .split(/("(?:[^"\\]|\\.)*")/)
    .map((part, i) => (i % 2 === 1 ? part : part.replace(key, (k) => FLAG_OF[k]!)))
    .join('');
}

const ROOT_NAME_EXAMPLES = 's3://bucket/prefix/2026-02-04T12-30-00 or file:///backups/2026-02-04T12-30-00';

/** Split --src ROOT/NAME into the store root and the backup name (the last path segment). */
export function splitBackupPath(src: string): { root: string; name: string } {
  const trimmed = src.replace(/\/+$/, '');
  const slash = trimmed.lastIndexOf('/');
  const name = trimmed.slice(slash + 1);
  const root = trimmed.slice(0, slash);
  if (slash < 0 || !name || root.endsWith(':/') || root.endsWith(':')) {
    throw new UsageError(`--src ${JSON.stringify(src)} is not ROOT/NAME (e.g. ${ROOT_NAME_EXAMPLES})`);
  }
  if (src.startsWith('/')) throw new UsageError(`--src ${JSON.stringify(src)} is a path: write it as a file URL, file://${src}`);
  try {
    parseStoreLocation(root);
  } catch {
    // s3://bucket/victoria: the last segment is taken for the backup's name, and what is left is no location.
    throw new UsageError(
      `--src ${JSON.stringify(src)} is not ROOT/NAME: its last path segment is the backup's name, and ${JSON.stringify(root)} before it is not a backup location ` +
        `(e.g. ${ROOT_NAME_EXAMPLES}); list the backups with: velero-plugin-victoria list --dst ${src}`,
    );
  }
  return { root, name };
}
