/**
 * The folder a backup is written into: a name that is safe everywhere it travels, a folder that is
 * empty or holds an earlier attempt of ours (nothing else is ever deleted as stale), and, after a
 * failed attempt that asked for it, the removal of what that attempt wrote.
 */
import { StoreError } from '../store/errors.js';
import { readWholeObject } from '../store/read-object.js';
import type { ObjectStore } from '../store/types.js';
import { deleteBackup } from './delete.js';
import { checkRelPath, VM_COMPLETE_MARKER } from './layout.js';
import { COMPLETE_KEY, IN_PROGRESS_KEY, MANIFEST_KEY, MAX_MANIFEST_BYTES, MAX_MARKER_BYTES, type SourceKind } from './manifest.js';

const BACKUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;

/** A name that is one folder under the root, and safe in URLs, S3 keys, listings and Velero's own names. */
export function checkBackupName(name: string): void {
  checkRelPath(name, 'backup name');
  if (name.includes('/')) {
    throw new Error(`backup name ${JSON.stringify(name)} has a "/": a backup is one folder under the root, and its re-run would delete a backup nested in it as stale objects`);
  }
  // Names travel through URLs, S3 keys, listings and Velero's own names: letters, digits, ".", "_", "-" only.
  if (!BACKUP_NAME.test(name)) {
    throw new Error(`backup name ${JSON.stringify(name)} may hold only letters, digits, ".", "_" and "-", start with a letter or digit, and have at most 255 characters (the default is the UTC time, such as 2026-02-04T12-30-00)`);
  }
}

const DATABASE: Record<SourceKind, string> = { metrics: 'VictoriaMetrics', logs: 'VictoriaLogs' };

/** What a backup folder (ours, complete or not, or vmbackup's) holds at its top: a folder holding one is a backup, not a root of backups. */
export const BACKUP_MARKERS: readonly string[] = [COMPLETE_KEY, MANIFEST_KEY, IN_PROGRESS_KEY, VM_COMPLETE_MARKER];

/**
 * A backup's folder may hold an earlier backup of ours of the same name and kind, complete or not,
 * which a re-run replaces (as vmbackup does with an existing -dst): our manifest or in-progress
 * marker says so. Anything else in it, another kind's backup, a vmbackup backup, other backups
 * nested below it or unrelated files, would be deleted as stale objects: refused, and untouched.
 */
export async function checkFolderIsOurs(store: ObjectStore, name: string, kind: SourceKind): Promise<void> {
  const where = `${store.location}/${name}`;
  const fix = 'give this backup another name (--name), or each database a root of its own (--dst)';
  // The root a backup, or inside one (--dst naming a backup or a folder in it, not the folder of
  // backups): a backup there would become part of it, restored by vmrestore with it and deleted with it.
  // An unfinished backup (only its in-progress marker yet) counts: its re-run would delete as stale
  // whatever was written inside it meanwhile.
  const holders = await Promise.all(BACKUP_MARKERS.map(async (m) => ((await store.head(m)) ? store.location : await store.folderAbove?.(m))));
  const marker = holders.findIndex((h) => h !== undefined);
  if (marker >= 0) {
    const holder = holders[marker]!;
    const what = holder === store.location ? `${store.location} is itself a backup` : `${store.location} is inside the backup ${holder}`;
    throw new Error(`${what} (it holds ${BACKUP_MARKERS[marker]}): a backup there would become part of it; give the folder of the backups as the root (--dst), outside any backup`);
  }
  for (const key of [MANIFEST_KEY, IN_PROGRESS_KEY]) {
    let bytes: Buffer;
    try {
      bytes = await readWholeObject(store, `${name}/${key}`, key === MANIFEST_KEY ? MAX_MANIFEST_BYTES : MAX_MARKER_BYTES);
    } catch (err) {
      if (err instanceof StoreError && err.code === 'NotFound') continue;
      throw err;
    }
    let earlier: unknown;
    try {
      earlier = (JSON.parse(bytes.toString('utf8')) as { kind?: unknown }).kind;
    } catch {
      throw new Error(`${where}/${key} is not JSON: cannot tell what this folder holds, so nothing is written into it: ${fix}`);
    }
    if (earlier !== kind) throw new Error(`${where} holds a ${DATABASE[earlier as SourceKind] ?? String(earlier)} backup; this ${DATABASE[kind]} backup would replace it: ${fix}`);
    return;
  }
  if (await store.head(`${name}/${VM_COMPLETE_MARKER}`)) {
    throw new Error(`${where} holds a complete vmbackup backup (${VM_COMPLETE_MARKER} without our manifest); this backup would replace it: ${fix}`);
  }
  let found = 0;
  let first: string | undefined;
  for await (const obj of store.list(`${name}/`)) {
    first ??= obj.key;
    if (++found >= 1000) break;
  }
  if (first !== undefined) {
    throw new Error(
      `${where}/ is not empty and holds no backup of ours (${found >= 1000 ? 'at least 1000' : found} object(s), e.g. ${store.location}/${first}): ` +
        `a backup there would delete them as stale objects, so nothing was written. Check --dst and --name; ${fix}`,
    );
  }
}

/** The fields of a folder's in-progress marker as they were written, unchecked. */
export type InProgressFields = { format?: unknown; kind?: unknown; run?: unknown; startedAt?: unknown } | null;

/** The folder's in-progress marker parsed, or undefined when there is none or it is not JSON. */
export async function readInProgress(store: ObjectStore, name: string): Promise<InProgressFields | undefined> {
  try {
    return JSON.parse((await readWholeObject(store, `${name}/${IN_PROGRESS_KEY}`, MAX_MARKER_BYTES)).toString('utf8')) as InProgressFields;
  } catch (err) {
    if (err instanceof SyntaxError || (err instanceof StoreError && err.code === 'NotFound')) return undefined;
    throw err;
  }
}

/** Another run of the same backup name took the folder over: this run stops without marking, deleting or removing anything. */
export class FolderTakenError extends Error {}

/**
 * Whether this run still owns the folder. Each run writes its id into the in-progress marker, so
 * the last run to start owns it. Two runs of one name at once (the CLI's default name, the UTC
 * second, shared by two runs into one root; overlapping runs with a fixed --name) would otherwise
 * each delete the other's objects as stale, and the last to finish would mark itself complete over
 * what the other had removed. Every run checks before it deletes stale objects, writes its manifest
 * and writes its complete marker; a run that lost the folder stops there. Not a lock (object stores
 * have no portable one): it narrows the overlap from the length of a backup to the moment between a
 * check and the write after it.
 */
export async function checkStillOurs(store: ObjectStore, name: string, run: string): Promise<void> {
  const holder = await readInProgress(store, name);
  if (holder?.run === run) return;
  const other =
    holder === undefined
      ? `its in-progress marker ${IN_PROGRESS_KEY} is gone (another backup of this name finished meanwhile?)`
      : `another backup of this name, started at ${String(holder?.startedAt)}, wrote its in-progress marker over this one's`;
  throw new FolderTakenError(
    `${store.location}/${name}/: ${other}. Two backups of one name ran at the same time, so this one stopped: nothing of it was marked complete, ` +
      'and nothing the other wrote was removed. Give each backup a name of its own (--name), or each database a root of its own (--dst)',
  );
}

/**
 * onFailure 'keep-journaled' when the attempt finished no file: removes what it wrote, and says in its error whether that
 * worked. The sentence is also kept apart (attemptNote), for a caller that replaces the error with
 * its own, such as the pod action's item timeout.
 */
export async function withRemoval(err: unknown, store: ObjectStore, name: string): Promise<Error> {
  const where = `${store.location}/${name}/`;
  let note: string;
  try {
    const removed = await deleteBackup(store, name);
    note = `; the ${removed.objects} object(s) this attempt wrote to ${where} were removed`;
  } catch (removal) {
    note =
      `; the objects this attempt wrote to ${where} could not be removed (${(removal as Error).message}): ` +
      'they hold no complete backup, and nothing else will remove them: delete them with your S3 tools';
  }
  return withNote(err, note);
}

/** onFailure 'keep-journaled': the folder stays for the next backup to take over; its error says so (and attemptNote). */
export function withKept(err: unknown, store: ObjectStore, name: string, files: number): Error {
  return withNote(
    err,
    `; the ${files} file(s) this attempt finished stay in ${store.location}/${name}/ (incomplete: never restored from) for the next backup to copy server-side ` +
      'instead of uploading them again; that backup removes the folder once it is complete',
  );
}

function withNote(err: unknown, note: string): Error {
  const error = err instanceof Error ? err : new Error(String(err));
  error.message += note;
  attemptNotes.set(error, note);
  return error;
}

const attemptNotes = new WeakMap<Error, string>();

/** The sentence a failed backup appended to its error about what became of its folder (removed or kept); '' for any other error. */
export function attemptNote(err: unknown): string {
  return err instanceof Error ? (attemptNotes.get(err) ?? '') : '';
}
