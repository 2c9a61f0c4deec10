/**
 * Presigned GET URLs for objects of an S3Store: what the restore action hands to the restore init
 * container instead of credentials (engine/plan.ts).
 *
 * Signing is local (no request is made). The URLs carry SigV4 query authentication and are valid
 * for at most 7 days (S3's limit); with temporary credentials (IRSA, instance roles, STS) a URL
 * stops working when the session that signed it expires, whichever comes first.
 *
 * `publicUrl` (the BackupStorageLocation key of velero-plugin-for-aws): the endpoint the URLs name,
 * when pods reach the object store under another address than Velero does. The signature covers
 * the host, so the URLs are signed for that endpoint, as Velero does for its download requests.
 *
 * The URLs are secrets until they expire: never log them (common/redact.ts).
 */
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { StoreError } from './errors.js';
import { checkKey } from './keys.js';
import type { S3Store } from './s3.js';
import { endpointUrl } from './s3-client.js';

/** S3's limit for SigV4 presigned URLs: 7 days. */
export const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

export interface PresignOptions {
  /** The endpoint to put into the URLs (BackupStorageLocation `publicUrl`); default: the store's. */
  publicUrl?: string;
}

export interface S3Presigner {
  /** A presigned GET URL for `key` (relative to the store root, as for the store's own methods). */
  presign(key: string, expiresInSeconds: number): Promise<string>;
  /** Release the signing client. */
  destroy(): void;
}

function configError(message: string): StoreError {
  return new StoreError('Config', message, { operation: 'presign' });
}

/**
 * A presigner for `store`'s objects, with the store's credentials, region and addressing style. Its
 * own client signs without flexible-checksum parameters (a GET URL needs none; some S3-compatible
 * servers reject unknown query parameters).
 */
export function s3Presigner(store: S3Store, options: PresignOptions = {}): S3Presigner {
  const endpoint = options.publicUrl ? endpointUrl('publicUrl', options.publicUrl, configError) : undefined;
  const c = store.client.config;
  // Looked up once, on the first URL: without a configured region the client's may not be the bucket's.
  let region: Promise<string> | undefined;
  const client = new S3Client({
    region: () => (region ??= store.bucketRegion().then(async (found) => found ?? (await c.region()))),
    credentials: c.credentials,
    ...(endpoint ? { endpoint } : c.endpoint ? { endpoint: c.endpoint } : {}),
    forcePathStyle: c.forcePathStyle,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const bucket = store.bucket;
  const root = `${store.prefix}/`;
  return {
    async presign(key: string, expiresInSeconds: number): Promise<string> {
      checkKey(key, 'presign');
      if (!Number.isSafeInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > MAX_PRESIGN_SECONDS) {
        throw configError(`presigned URLs are valid from 1 s to ${MAX_PRESIGN_SECONDS} s (7 days, S3's limit), got ${expiresInSeconds}`);
      }
      try {
        return await getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: root + key }), { expiresIn: expiresInSeconds });
      } catch (err) {
        // Credential providers fail here (no credentials, an unreadable credentials file).
        throw new StoreError('Credentials', `presign ${store.location}/${key}: cannot sign with the location's credentials: ${(err as Error).message}`, {
          operation: 'presign',
          target: `${store.location}/${key}`,
          cause: err,
        });
      }
    },
    destroy() {
      client.destroy();
    },
  };
}

