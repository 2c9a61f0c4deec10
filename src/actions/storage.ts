/**
 * The bucket a Velero backup goes to, opened the way Velero opens it for its object-store plugin
 * (docs/plugin-protocol.md): an item action receives none of it, so it reads the
 * BackupStorageLocation and its credential Secret through the API. The Secret's value is an AWS
 * shared-credentials file; like Velero, we materialise it as a file (mode 0600, removed on close)
 * and let the SDK's INI provider read it with the location's `profile`. Without a credential on
 * the location, its config's `credentialsFile`, else Velero's own file (`AWS_SHARED_CREDENTIALS_FILE`,
 * mounted by `velero install`), else the SDK's default chain (IRSA, instance roles) applies.
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KubeClient } from '../kube/client.js';
import type { BackupStorageLocation } from '../kube/velero-objects.js';
import { certificatesOnly } from '../store/s3-client.js';
import type { RetryNotice } from '../store/retry-report.js';
import { S3Store } from '../store/s3.js';
import { bslS3Options } from './bsl-s3-options.js';
import { VELERO_BACKUPS } from './leftovers.js';
import { forgetCredentialsDir, newCredentialsDir, openStores } from './open-locations.js';

async function removeCredentials(dir: string | undefined): Promise<void> {
  if (!dir) return;
  await rm(dir, { recursive: true, force: true });
  forgetCredentialsDir(dir);
}

const S3_PROVIDERS = new Set(['aws', 'velero.io/aws']);

export interface LocationStore {
  store: S3Store;
  bucket: string;
  /** Key prefix of `store` from the bucket root. */
  prefix: string;
  /** Velero's own folder of its backups in the location (`<location prefix>/backups/`), read through the same client. */
  veleroBackups: S3Store;
  /** The location's `publicUrl`: the endpoint other pods reach the object store at (presigned URLs). */
  publicUrl?: string;
  /** How the object store's TLS is checked (caCert PEM, insecureSkipTLSVerify): other pods need the same. */
  tls: { caCert?: string; insecureSkipTLSVerify?: boolean };
  /** Accepted location settings that have no effect here, worth a warning. */
  warnings: string[];
  close(): Promise<void>;
}

export interface OpenLocationOptions {
  kube: KubeClient;
  /** Velero's namespace, where the location and its Secret live. */
  namespace: string;
  location: string;
  /** The store's prefix from the location's prefix (the plugin's folder inside it). */
  prefixOf: (bslPrefix: string) => string;
  /** Refuse a ReadOnly location (backups write; restores and deletes say what they need). */
  write: boolean;
  env?: NodeJS.ProcessEnv;
  /** Told about every retry of the store's requests (store/retry-report.ts). */
  onRetry?: (notice: RetryNotice) => void;
}

export async function openLocationStore(opts: OpenLocationOptions): Promise<LocationStore> {
  const { kube, namespace, location } = opts;
  const where = `backupstoragelocations.velero.io "${location}" in namespace ${namespace}`;
  const bsl: BackupStorageLocation = await kube.getBackupStorageLocation(namespace, location);
  if (!S3_PROVIDERS.has(bsl.spec.provider)) {
    throw new Error(`${where} uses provider ${JSON.stringify(bsl.spec.provider)}: velero-plugin-victoria writes to S3-compatible storage only (provider aws, velero-plugin-for-aws)`);
  }
  if (opts.write && bsl.spec.accessMode === 'ReadOnly') {
    throw new Error(`${where} is ReadOnly: Victoria data cannot be backed up into it; back up to a ReadWrite location`);
  }
  const bucket = bsl.spec.objectStorage?.bucket?.replace(/^\/+|\/+$/g, '');
  if (!bucket) throw new Error(`${where} has no spec.objectStorage.bucket`);
  const bslPrefix = (bsl.spec.objectStorage.prefix ?? '').replace(/^\/+|\/+$/g, '');

  const config: Record<string, string> = { ...(bsl.spec.config ?? {}) };
  const { caCert, caCertRef } = bsl.spec.objectStorage;
  // As Velero: the Secret named by caCertRef before the deprecated inline caCert.
  if (caCertRef) config.caCert = (await kube.getSecretKey(namespace, caCertRef.name, caCertRef.key)).toString('utf8');
  else if (caCert) config.caCert = Buffer.from(caCert, 'base64').toString('utf8');
  let tempDir: string | undefined;
  let credentialsSource: string | undefined;
  const env = opts.env ?? process.env;
  try {
    if (bsl.spec.credential) {
      const { name, key } = bsl.spec.credential;
      const secret = await kube.getSecretKey(namespace, name, key);
      tempDir = await newCredentialsDir();
      config.credentialsFile = join(tempDir, 'credentials');
      credentialsSource = `key "${key}" of secret "${name}" in namespace ${namespace} (the credential of ${where})`;
      await writeFile(config.credentialsFile, secret, { mode: 0o600 });
    } else if (!config.credentialsFile && env.AWS_SHARED_CREDENTIALS_FILE) {
      // A credentialsFile in the location's config is what velero-plugin-for-aws reads too: it wins.
      config.credentialsFile = env.AWS_SHARED_CREDENTIALS_FILE;
    }
    let parsed;
    try {
      parsed = bslS3Options(config);
    } catch (err) {
      throw new Error(`${where}: ${(err as Error).message}`);
    }
    const prefix = opts.prefixOf(bslPrefix);
    const storeOptions = { ...parsed.options, ...(credentialsSource ? { credentialsSource } : {}), ...(opts.onRetry ? { onRetry: opts.onRetry } : {}), bucket };
    const store = new S3Store({ ...storeOptions, prefix });
    const veleroBackups = new S3Store({ ...storeOptions, prefix: [bslPrefix, VELERO_BACKUPS].filter(Boolean).join('/') }, store.client);
    const dir = tempDir;
    openStores.add(store);
    return {
      store,
      bucket,
      prefix,
      veleroBackups,
      ...(parsed.publicUrl ? { publicUrl: parsed.publicUrl } : {}),
      tls: {
        ...(parsed.options.caCert ? { caCert: certificatesOnly(parsed.options.caCert) } : {}),
        ...(parsed.options.insecureSkipTLSVerify ? { insecureSkipTLSVerify: true } : {}),
      },
      warnings: parsed.warnings.map((w) => `${where}: ${w}`),
      close: async () => {
        openStores.delete(store);
        // Each closes its own direct-read connections; the client they share closes with the first.
        veleroBackups.destroy();
        store.destroy();
        await removeCredentials(dir);
      },
    };
  } catch (err) {
    await removeCredentials(tempDir);
    throw err;
  }
}
