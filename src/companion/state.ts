/**
 * The recorded snapshot set: `<state-dir>/snapshots.json`, written by `hook pre`, read by `files`
 * and `tar`, removed by `hook post` (or by `serve` when it expires). It is the only memory the
 * companion has between exec calls, and the only list of snapshots it may ever delete: snapshots
 * someone else made are never in it.
 *
 * Written atomically (temporary file, fsync, rename), so a reader sees the old record or the new
 * one, never half of one, even if the container is killed mid-write.
 */
import { mkdir, readFile, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../engine/file-writer.js';
import { isSourceKind, type Snapshot, type SourceKind } from '../victoria/types.js';
import { CompanionError, noRecordError, usageError } from './errors.js';

export const STATE_FORMAT = 'velero-plugin-victoria/companion-state/v1';
const STATE_FILE = 'snapshots.json';

export interface RecordedSet {
  format: typeof STATE_FORMAT;
  kind: SourceKind;
  /** The server's base URL, without credentials. */
  url: string;
  /** Snapshot time (ISO 8601): `counts` counts data before it, and serve ages the set from it (or from its last use). */
  createdAt: string;
  snapshots: Snapshot[];
  version?: string;
}

export const recordPath = (stateDir: string): string => join(stateDir, STATE_FILE);

/** What every failure to use the state directory asks for. */
export const STATE_DIR_HINT = '--state-dir / COMPANION_STATE_DIR must be a writable directory (an emptyDir)';

/** The recorded set, or undefined when there is none. */
export async function readRecord(stateDir: string): Promise<RecordedSet | undefined> {
  const file = recordPath(stateDir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR' || code === 'EISDIR') {
      throw usageError(`cannot read ${file} (${code}): --state-dir / COMPANION_STATE_DIR (${stateDir}) must be a writable directory (an emptyDir), and a file is in its way`);
    }
    throw new CompanionError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return parseRecord(text);
  } catch (err) {
    throw new CompanionError(
      `${file} is not a snapshot record (${(err as Error).message}): delete the snapshots it names with the server's API, then delete the file`,
    );
  }
}

/** The recorded set that `files` and `tar` serve; exit 3 without one. */
export async function requireRecord(stateDir: string, kind: SourceKind): Promise<RecordedSet> {
  const record = await readRecord(stateDir);
  if (!record) throw noRecordError();
  if (record.kind !== kind) {
    throw new CompanionError(`${recordPath(stateDir)} records ${record.kind} snapshots, but this companion is configured for ${kind}: check --kind / VICTORIA_KIND`);
  }
  return record;
}

/**
 * The record, when the snapshots in it were made on the server this companion is configured for.
 * Deleting them through another server (a changed VICTORIA_URL or VICTORIA_KIND) would find
 * nothing, drop the record and leave them behind, untracked: the hooks and `serve` stop instead.
 */
export async function recordOfThisServer(stateDir: string, kind: SourceKind, url: string): Promise<RecordedSet | undefined> {
  const record = await readRecord(stateDir);
  if (record && (record.kind !== kind || record.url !== url)) {
    throw usageError(
      `${recordPath(stateDir)} records ${record.kind} snapshot(s) ${record.snapshots.map((s) => s.name).join(', ') || '(none)'} made at ${record.url}, ` +
        `but this companion is configured for ${kind} at ${url} (--kind / VICTORIA_KIND, --url / VICTORIA_URL): ` +
        `restore the configuration that made them, or delete them through that server's API and then remove ${recordPath(stateDir)}`,
    );
  }
  return record;
}

export async function writeRecord(stateDir: string, record: RecordedSet): Promise<void> {
  const file = recordPath(stateDir);
  const tmp = join(stateDir, `.${STATE_FILE}.${process.pid}.tmp`);
  try {
    await mkdir(stateDir, { recursive: true });
    await writeFileAtomic(file, tmp, `${JSON.stringify(record, null, 2)}\n`, 0o600);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw new CompanionError(`cannot write ${file}: ${(err as Error).message}: ${STATE_DIR_HINT}`);
  }
}

const IN_USE_FILE = 'in-use';

/**
 * Notes that a backup reads the recorded set now (`tar`, as it starts and while it streams), as
 * the mtime of `<state-dir>/in-use`: serve ages a set from its last use, so it never deletes one
 * that a long backup is still reading. Not `files`: a backup that lists a stale set and then
 * refuses it would keep it alive. Best effort: a failure here costs only that protection, never
 * the backup.
 */
export async function markInUse(stateDir: string, now = new Date()): Promise<void> {
  const file = join(stateDir, IN_USE_FILE);
  await utimes(file, now, now).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') return;
    await writeFile(file, '', { mode: 0o600 });
    await utimes(file, now, now);
  }).catch(() => undefined);
}

/** When a backup last read the recorded set (markInUse), or undefined. */
export async function lastUse(stateDir: string): Promise<Date | undefined> {
  return stat(join(stateDir, IN_USE_FILE)).then((s) => s.mtime, () => undefined);
}

/** Removes the record; one that is already gone is fine. */
export async function removeRecord(stateDir: string): Promise<void> {
  try {
    await unlink(recordPath(stateDir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CompanionError(`cannot remove ${recordPath(stateDir)}: ${(err as Error).message}`);
  }
}

/** Checks the file's shape, and turns dates back into Dates. */
function parseRecord(text: string): RecordedSet {
  const r = JSON.parse(text) as Partial<RecordedSet> | null;
  if (r === null || typeof r !== 'object') throw new Error('not a JSON object');
  if (r.format !== STATE_FORMAT) throw new Error(`format is ${JSON.stringify(r.format)}, expected ${STATE_FORMAT}`);
  if (!isSourceKind(r.kind)) throw new Error('kind must be metrics or logs');
  if (typeof r.url !== 'string' || typeof r.createdAt !== 'string' || Number.isNaN(Date.parse(r.createdAt))) throw new Error('url or createdAt missing');
  if (!Array.isArray(r.snapshots)) throw new Error('snapshots missing');
  const snapshots = r.snapshots.map((s: Snapshot & { createdAt: unknown }, i): Snapshot => {
    const fields = [s.name, s.handle, s.dir, s.relPathPrefix];
    if (s.kind !== r.kind || fields.some((f) => typeof f !== 'string') || typeof s.createdAt !== 'string') {
      throw new Error(`snapshots[${i}] is not a ${r.kind} snapshot`);
    }
    // Only the fields we know: records written before `followSymlinks` was dropped still carry it.
    return { kind: s.kind, name: s.name, handle: s.handle, dir: s.dir, relPathPrefix: s.relPathPrefix, ...(s.partition ? { partition: s.partition } : {}), createdAt: new Date(s.createdAt) };
  });
  return { ...(r as RecordedSet), snapshots };
}
