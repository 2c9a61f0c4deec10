/** Finding backups in a store, and opening one only if it is complete. */
import { createHash } from 'node:crypto';
import type { ObjectStore } from '../store/types.js';
import { COMPLETE_KEY, MANIFEST_FORMAT, MANIFEST_KEY, parseManifest, type CompleteMarker, type Manifest } from './manifest.js';

export async function readObject(store: ObjectStore, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.get(key)) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

export class IncompleteBackupError extends Error {}

/**
 * Open a backup for reading: its complete marker must exist and name the manifest's SHA-256.
 * `name` is the backup's folder relative to the store root (e.g. `2026-02-04T12-30-00`).
 */
export async function openBackup(store: ObjectStore, name: string): Promise<Manifest> {
  const where = `${store.location}/${name}`;
  if (!(await store.head(`${name}/${COMPLETE_KEY}`))) {
    const anything = await store.head(`${name}/${MANIFEST_KEY}`);
    let hasObjects = Boolean(anything);
    if (!hasObjects) for await (const _ of store.list(`${name}/`)) { hasObjects = true; break; }
    throw new IncompleteBackupError(
      hasObjects
        ? `${where} is incomplete (no ${COMPLETE_KEY}): the backup that wrote it did not finish; use another backup, or run the backup again`
        : `${where} does not exist (no objects under it); list the backups with: velero-plugin-victoria list --dst <root>`,
    );
  }
  const marker = JSON.parse((await readObject(store, `${name}/${COMPLETE_KEY}`)).toString('utf8')) as CompleteMarker;
  if (marker.format !== MANIFEST_FORMAT) throw new IncompleteBackupError(`${where}: unknown complete marker format ${JSON.stringify(marker.format)}`);
  const manifestBytes = await readObject(store, `${name}/${MANIFEST_KEY}`);
  const sha = createHash('sha256').update(manifestBytes).digest('hex');
  if (sha !== marker.manifestSha256) {
    throw new IncompleteBackupError(`${where}: ${MANIFEST_KEY} does not match its complete marker (SHA-256 ${sha}, marker says ${marker.manifestSha256}); the backup was changed after it completed`);
  }
  return parseManifest(manifestBytes.toString('utf8'), where);
}

export interface BackupListing {
  name: string;
  complete: boolean;
  manifest?: Manifest;
  /** Why it cannot be used, for incomplete ones. */
  problem?: string;
}

/** Every backup folder directly under `prefix` ('' or ending in '/'), oldest first by name. */
export async function listBackups(store: ObjectStore, prefix = ''): Promise<BackupListing[]> {
  const dirs = await store.listDirectories(prefix);
  const out: BackupListing[] = [];
  for (const dir of dirs.sort()) {
    const name = dir.replace(/\/$/, '');
    try {
      out.push({ name, complete: true, manifest: await openBackup(store, name) });
    } catch (err) {
      if (!(err instanceof IncompleteBackupError)) throw err;
      out.push({ name, complete: false, problem: err.message });
    }
  }
  return out;
}

/**
 * The newest complete backup under `prefix` that `accept` takes (e.g. same kind of source), by
 * completion time: the base of an incremental one.
 */
export async function newestComplete(
  store: ObjectStore,
  prefix = '',
  accept: (manifest: Manifest) => boolean = () => true,
): Promise<{ name: string; manifest: Manifest } | undefined> {
  const complete = (await listBackups(store, prefix)).filter((b) => b.complete && b.manifest && accept(b.manifest));
  complete.sort((a, b) => a.manifest!.completedAt.localeCompare(b.manifest!.completedAt));
  const last = complete.at(-1);
  return last ? { name: last.name, manifest: last.manifest! } : undefined;
}
