/** Finding backups in a store, and opening one only if it is complete. */
import { createHash } from 'node:crypto';
import { StoreError } from '../store/errors.js';
import type { ObjectStore } from '../store/types.js';
import { readInProgress, type InProgressFields } from './backup-folder.js';
import { VM_COMPLETE_MARKER } from './layout.js';
import { JOURNAL_PREFIX } from './journal.js';
import { COMPLETE_KEY, IN_PROGRESS_KEY, MANIFEST_FORMAT, MANIFEST_KEY, MAX_MANIFEST_BYTES, MAX_MARKER_BYTES, parseManifest, UnknownManifestFormatError, type CompleteMarker, type Manifest, type SourceKind } from './manifest.js';
import { forEachLimit } from '../store/pool.js';
import { ObjectTooLargeError, readWholeObject } from '../store/read-object.js';

/**
 * Backups whose markers or manifests are read at once. A Schedule keeps dozens of backups per
 * workload, and each read is one small request whose time is the store's latency.
 */
const CATALOG_READS = 8;

export class IncompleteBackupError extends Error {}

/** A backup's complete marker, checked for our format; IncompleteBackupError when it has none. */
async function readMarker(store: ObjectStore, name: string): Promise<CompleteMarker> {
  const where = `${store.location}/${name}`;
  let bytes: Buffer;
  try {
    bytes = await readWholeObject(store, `${name}/${COMPLETE_KEY}`, MAX_MARKER_BYTES);
  } catch (err) {
    if (err instanceof ObjectTooLargeError) throw new IncompleteBackupError(`${err.message}; use another backup`);
    if (!(err instanceof StoreError && err.code === 'NotFound')) throw err;
    throw new IncompleteBackupError(await whyNoMarker(store, name));
  }
  let marker: Partial<CompleteMarker>;
  try {
    marker = JSON.parse(bytes.toString('utf8')) as Partial<CompleteMarker>;
  } catch {
    throw new IncompleteBackupError(`${where}: its ${COMPLETE_KEY} is not JSON; the backup was changed after it completed`);
  }
  if (marker.format !== MANIFEST_FORMAT) {
    // A later version changes the marker's format with the manifest's (they share one constant):
    // that backup is whole, just not readable by this version, which must say so rather than call it broken.
    throw new IncompleteBackupError(
      `${where}: unknown complete marker format ${JSON.stringify(marker.format)} (this tool reads ${MANIFEST_FORMAT}): ` +
        'written by another version of velero-plugin-victoria; use a version that reads it, or another backup',
    );
  }
  if (typeof marker.manifestSha256 !== 'string' || typeof marker.completedAt !== 'string') {
    throw new IncompleteBackupError(`${where}: its ${COMPLETE_KEY} lacks manifestSha256 or completedAt; the backup was changed after it completed`);
  }
  return marker as CompleteMarker;
}

/** What a folder without our complete marker is: an unfinished backup of ours, someone else's, not a backup at all, or nothing. */
async function whyNoMarker(store: ObjectStore, name: string): Promise<string> {
  const where = `${store.location}/${name}`;
  if ((await store.head(`${name}/${MANIFEST_KEY}`)) || (await store.head(`${name}/${IN_PROGRESS_KEY}`))) {
    return `${where} is incomplete (no ${COMPLETE_KEY}): the backup that wrote it did not finish (or is still running); use another backup, or run the backup again`;
  }
  if (await store.head(`${name}/${VM_COMPLETE_MARKER}`)) {
    return `${where} is a vmbackup backup, not one of ours (no ${COMPLETE_KEY}): restore it with vmrestore`;
  }
  for await (const _ of store.list(`${name}/`)) {
    return (
      `${where} holds objects but no backup of ours (no ${COMPLETE_KEY}, ${MANIFEST_KEY} or ${IN_PROGRESS_KEY}): ` +
      `it is not a backup folder (a root of backups? list them with: velero-plugin-victoria list --dst ${where}), or an older version's unfinished backup`
    );
  }
  for await (const _ of store.list('')) {
    return `${where} does not exist (no objects under it); list the backups with: velero-plugin-victoria list --dst ${store.location}`;
  }
  return `${where} does not exist, nor does anything under ${store.location}: check the root of the location (bucket, prefix or directory)`;
}

/** The manifest a complete marker vouches for: its SHA-256 must be the one the marker names. */
async function readManifest(store: ObjectStore, name: string, marker: CompleteMarker): Promise<Manifest> {
  const where = `${store.location}/${name}`;
  let manifestBytes: Buffer;
  try {
    manifestBytes = await readWholeObject(store, `${name}/${MANIFEST_KEY}`, MAX_MANIFEST_BYTES);
  } catch (err) {
    if (err instanceof ObjectTooLargeError) throw new IncompleteBackupError(`${err.message}; use another backup`);
    // A marker without its manifest: partly copied, partly deleted, or deleted between the two reads.
    // Unusable, like any backup that is not whole, but no reason to fail the listing or the next backup.
    if (!(err instanceof StoreError && err.code === 'NotFound')) throw err;
    throw new IncompleteBackupError(`${where} has a complete marker but no ${MANIFEST_KEY}: it was partly deleted or copied; use another backup`);
  }
  const sha = createHash('sha256').update(manifestBytes).digest('hex');
  if (sha !== marker.manifestSha256) {
    throw new IncompleteBackupError(`${where}: ${MANIFEST_KEY} does not match its complete marker (SHA-256 ${sha}, marker says ${marker.manifestSha256}); the backup was changed after it completed`);
  }
  try {
    return parseManifest(manifestBytes.toString('utf8'), where);
  } catch (err) {
    // A format of a later version of this tool, or a manifest that is not ours in shape: unusable
    // here, as a base or for a restore, but no reason to fail a listing or the next backup.
    const fix = err instanceof UnknownManifestFormatError ? 'use a version of velero-plugin-victoria that reads it, or another backup' : 'it was written by another tool or changed with its marker; use another backup';
    throw new IncompleteBackupError(`${(err as Error).message}; ${fix}`);
  }
}

/**
 * Open a backup for reading: its complete marker must exist and name the manifest's SHA-256.
 * `name` is the backup's folder relative to the store root (e.g. `2026-02-04T12-30-00`).
 */
export async function openBackup(store: ObjectStore, name: string): Promise<Manifest> {
  return readManifest(store, name, await readMarker(store, name));
}

export interface BackupListing {
  name: string;
  complete: boolean;
  /**
   * Without the trees: a listing holds every backup of a root at once, and a manifest's file
   * lists take about 1 KB per file in memory (a Schedule's ~90 backups of 400,000 files each would
   * need over 10 GiB); totals, counts and times are what a listing shows.
   */
  manifest?: Omit<Manifest, 'trees'>;
  /** Why it cannot be used, for incomplete ones. */
  problem?: string;
}

/** The backup folders directly under `prefix` ('' or ending in '/'), oldest first by name. */
async function backupNames(store: ObjectStore, prefix: string): Promise<string[]> {
  return (await store.listDirectories(prefix)).sort().map((dir) => dir.replace(/\/$/, ''));
}

/** Every backup folder directly under `prefix` ('' or ending in '/'), oldest first by name. */
export async function listBackups(store: ObjectStore, prefix = ''): Promise<BackupListing[]> {
  const names = await backupNames(store, prefix);
  const out = new Array<BackupListing>(names.length);
  await forEachLimit(names.keys(), CATALOG_READS, async (i) => {
    const name = names[i]!;
    try {
      const { trees: _trees, ...manifest } = await openBackup(store, name);
      out[i] = { name, complete: true, manifest };
    } catch (err) {
      if (!(err instanceof IncompleteBackupError) && !unreadableHere(err)) throw err;
      out[i] = { name, complete: false, problem: err.message };
    }
  });
  return out;
}

/**
 * An object of one backup that this store cannot read, while others it can: moved to an archive
 * storage class by a lifecycle rule (InvalidObjectState), or denied (a KMS key or a policy that no
 * longer grants it). That backup is unusable, but not every other one.
 */
function unreadableHere(err: unknown): err is StoreError {
  return err instanceof StoreError && (err.code === 'AccessDenied' || isArchived(err));
}

const isArchived = (err: StoreError): boolean => err.backendCode === 'InvalidObjectState';

export interface NewestCompleteOptions {
  /** Which complete backups may be the base (e.g. same kind of source); default: any. */
  accept?: (manifest: Manifest) => boolean;
  /** Told of each backup passed over because the store will not hand it out (unreadableHere), with whether it is archived. */
  onUnreadable?: (name: string, message: string, archived: boolean) => void;
  /** Told of each folder without a usable complete marker: the candidates of failedAttempts. */
  onIncomplete?: (name: string) => void;
}

/**
 * The newest complete backup under `prefix` that `accept` takes, by completion time: the base of
 * an incremental one. Only the small complete markers are read to order the backups (each names
 * its completion time); manifests, which list every file, are read newest first until one is
 * accepted, usually one. Backups that are not complete are skipped: an incremental backup then
 * copies from an older one, or uploads everything. So are backups whose marker or manifest cannot
 * be read (unreadableHere), each told to `onUnreadable`, with whether it is archived (a lifecycle
 * rule's doing, expected of old backups) rather than denied: an archived old backup must not stop
 * every later one.
 */
export async function newestComplete(store: ObjectStore, prefix = '', options: NewestCompleteOptions = {}): Promise<{ name: string; manifest: Manifest } | undefined> {
  const { accept = () => true, onUnreadable = () => undefined, onIncomplete = () => undefined } = options;
  const marked: Array<{ name: string; marker: CompleteMarker }> = [];
  await forEachLimit(await backupNames(store, prefix), CATALOG_READS, async (name) => {
    try {
      marked.push({ name, marker: await readMarker(store, name) });
    } catch (err) {
      if (unreadableHere(err)) onUnreadable(name, err.message, isArchived(err));
      else if (err instanceof IncompleteBackupError) onIncomplete(name);
      else throw err;
    }
  });
  marked.sort((a, b) => b.marker.completedAt.localeCompare(a.marker.completedAt) || b.name.localeCompare(a.name));
  for (const { name, marker } of marked) {
    let manifest: Manifest;
    try {
      manifest = await readManifest(store, name, marker);
    } catch (err) {
      if (unreadableHere(err)) onUnreadable(name, err.message, isArchived(err));
      else if (!(err instanceof IncompleteBackupError)) throw err;
      continue;
    }
    if (accept(manifest)) return { name, manifest };
  }
  return undefined;
}

/** A backup of ours that did not complete: its folder's name, its run (the in-progress marker's), when it started, and whether its journal names finished files. */
export interface FailedAttempt {
  name: string;
  run: string;
  startedAt: string;
  journaled: boolean;
}

/** A folder's in-progress marker as writeBackup writes it, or undefined (none, not JSON, not ours). */
export async function inProgressMarker(store: ObjectStore, name: string): Promise<{ kind: unknown; run: string; startedAt: string } | undefined> {
  let marker: InProgressFields | undefined;
  try {
    marker = await readInProgress(store, name);
  } catch (err) {
    if (err instanceof ObjectTooLargeError) return undefined;
    throw err;
  }
  const { format, kind, run, startedAt } = marker ?? {};
  return format === MANIFEST_FORMAT && typeof run === 'string' && typeof startedAt === 'string' ? { kind, run, startedAt } : undefined;
}

/**
 * Of the folders `names` (without a complete marker: newestComplete's onIncomplete), the backups
 * of `kind` that this tool began and did not finish, by the in-progress marker each wrote first;
 * newest first. Folders of another kind, of another tool, or without that marker are not ours to
 * take over or remove.
 */
export async function failedAttempts(store: ObjectStore, names: string[], kind: SourceKind): Promise<FailedAttempt[]> {
  const found: FailedAttempt[] = [];
  await forEachLimit(names, CATALOG_READS, async (name) => {
    let marker;
    try {
      marker = await inProgressMarker(store, name);
    } catch (err) {
      // An old folder archived by a lifecycle rule, or denied, must not stop every later backup.
      if (unreadableHere(err)) return;
      throw err;
    }
    if (marker?.kind !== kind) return;
    let journaled = false;
    for await (const _ of store.list(`${name}/${JOURNAL_PREFIX}`)) {
      journaled = true;
      break;
    }
    found.push({ name, run: marker.run, startedAt: marker.startedAt, journaled });
  });
  return found.sort((a, b) => b.startedAt.localeCompare(a.startedAt) || b.name.localeCompare(a.name));
}
