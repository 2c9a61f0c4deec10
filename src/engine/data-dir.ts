/**
 * The directory a restore writes into: whether it may (empty, the same restore's unfinished files,
 * or contents to move aside; never under a running database), moving old contents aside without
 * deleting anything, and errors that say whose the directory is when it cannot be written.
 */
import { lstat, mkdir, readdir, readFile, realpath, rename, rmdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { FLOCK_FILE, lockHolderOf, seesEveryLock } from './db-lock.js';
import { RESTORED_MARKER } from './restored-marker.js';

/** VictoriaMetrics refuses to start on a directory holding it; restore.ts writes it first and removes it last. */
export const RESTORE_MARKER = 'restore-in-progress';

/**
 * A refusal to read or write the data directory (the restore run as another user than the
 * directory's owner, a read-only mount), said with whose the directory is and what to do; other
 * errors as they are.
 */
export async function withAccessHint(err: unknown, dataDir: string): Promise<unknown> {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EROFS') return new Error(`data directory ${dataDir} is on a read-only file system (${(err as Error).message}): mount it read-write for the restore`, { cause: err });
  if (code !== 'EACCES' && code !== 'EPERM') return err;
  // The directory may not exist yet: then its parent is the one to write in.
  let dir = dataDir;
  let st = await stat(dir).catch(() => undefined);
  if (!st) st = await stat((dir = dirname(dataDir))).catch(() => undefined);
  const whose = st ? `${dir} is owned by ${st.uid}:${st.gid} with mode ${(st.mode & 0o7777).toString(8)}` : `${dir} cannot be read`;
  const me = process.getuid ? `${process.getuid()}:${process.getgid!()}` : 'another user';
  return new Error(`cannot write in data directory ${dataDir} (${code}: ${(err as Error).message}): ${whose}, and this restore runs as ${me}: run it as the directory's owner or as root`, {
    cause: err,
  });
}

const LOST_AND_FOUND = 'lost+found';
/** The folder inside a data directory that a replace moves its contents into when the directory cannot be renamed. */
const REPLACED_INSIDE = '.replaced-';

/**
 * The entries without the file system's lost+found, which is not data. Only a real directory is
 * passed over: a link of that name would lead the restore's writes out of the data directory.
 */
async function withoutLostAndFound(dir: string, entries: string[]): Promise<string[]> {
  if (!entries.includes(LOST_AND_FOUND)) return entries;
  const real = (await lstat(join(dir, LOST_AND_FOUND))).isDirectory();
  return real ? entries.filter((e) => e !== LOST_AND_FOUND) : entries;
}

/** Entries of `dir`, or [] when it does not exist. */
async function entriesOf(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    if (code === 'ENOTDIR') throw new Error(`data directory ${dir} is a file, not a directory: point --data-dir at the database's -storageDataPath directory, or an empty or new one`);
    throw err;
  }
}

/**
 * `dir` with its symbolic links resolved: a data directory that is a link is restored (and
 * replaced) where the link points, and the link stays. As given when it does not exist yet.
 */
export async function realDir(dir: string): Promise<string> {
  try {
    return await realpath(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return dir;
    throw err;
  }
}

/**
 * Moves the contents of `dir` aside, deleting nothing: the whole directory to a sibling when it can
 * be renamed, else its entries into a hidden folder inside it. Renaming fails for a mount point
 * (a hostPath volume: EBUSY), below a read-only root (the restore init container's: EROFS), or
 * without write access to the parent; whatever the reason, `dir` is then as it was and moving
 * inside it needs only `dir` itself. An entry that is a mount point of its own cannot move: refused
 * before anything moves. A rename that fails midway puts back what had moved.
 */
export async function moveAside(dir: string): Promise<string> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const sibling = `${dir.replace(/\/+$/, '')}-replaced-${stamp}`;
  const renamed = await rename(dir, sibling).then(() => true, () => false);
  if (renamed) {
    await mkdir(dir, { recursive: true });
    return sibling;
  }
  const fail = (why: string) =>
    new Error(`cannot move the contents of data directory ${dir} aside: ${why}. Nothing was deleted; restore into an empty directory instead, or move the contents away yourself`);
  const device = (await stat(dir)).dev;
  // lost+found belongs to the file system, not to the database: it stays.
  const entries = await withoutLostAndFound(dir, await readdir(dir));
  for (const entry of entries) {
    if ((await lstat(join(dir, entry))).dev !== device) throw fail(`${entry} in it is a mount point of its own (another volume mounted inside the data directory), which cannot be moved`);
  }
  const inside = join(dir, `${REPLACED_INSIDE}${stamp}`);
  await mkdir(inside);
  const moved: string[] = [];
  try {
    for (const entry of entries) {
      await rename(join(dir, entry), join(inside, entry));
      moved.push(entry);
    }
  } catch (err) {
    const back = await Promise.allSettled(moved.map((e) => rename(join(inside, e), join(dir, e))));
    const stuck = moved.filter((_, i) => back[i]!.status === 'rejected');
    if (stuck.length === 0) await rmdir(inside).catch(() => undefined);
    throw fail(
      `${(err as Error).message}; ${stuck.length === 0 ? 'what had moved was put back' : `${stuck.join(', ')} could not be put back from ${inside}: move them back by hand`}`,
    );
  }
  return inside;
}

/**
 * Whether a directory is (or was) a database's: a replace moves it aside, and a wrong path (a
 * typo, `/var/lib` for `/var/lib/victoria-metrics`) must not take a system directory with it. Any
 * of: the lock file both databases create and leave, an unfinished restore's marker, a finished
 * plan restore's note, what an earlier replace moved aside inside it, VictoriaLogs' partitions/,
 * or VictoriaMetrics' indexdb/ (before 1.133) or data/small, data/big or data/indexdb (a restored
 * copy that never ran has no lock file).
 */
async function looksLikeDatabase(dir: string, entries: string[]): Promise<boolean> {
  if ([FLOCK_FILE, RESTORE_MARKER, RESTORED_MARKER, 'partitions', 'indexdb'].some((e) => entries.includes(e))) return true;
  if (entries.some((e) => e.startsWith(REPLACED_INSIDE))) return true;
  if (!entries.includes('data')) return false;
  const data = await entriesOf(join(dir, 'data')).catch((): string[] => []);
  return ['small', 'big', 'indexdb'].some((e) => data.includes(e));
}

/** A restore into a directory that holds data, without `replace`: callers add how to ask for it. */
export class DataDirNotEmptyError extends Error {}

/**
 * Whether a restore may write into `dataDir`: 'empty' (or missing), 'resume' (the same restore's
 * unfinished files, see RestoreRequest.resumeToken) or 'replace' (contents to move aside). Throws for a
 * directory a running database holds, and for a non-empty one without `replace`. Cheap and
 * read-only, so callers with a slow step before the restore (the plan's download) check first.
 */
export async function checkDataDir(dir: string, req: { replace?: boolean; resumeToken?: string; onWarning?: (message: string) => void }): Promise<'empty' | 'resume' | 'replace'> {
  const dataDir = resolve(dir);
  // A fresh ext4 volume mounted as the data directory holds lost+found, which is not data.
  const existing = await withoutLostAndFound(dataDir, await entriesOf(dataDir));
  if (existing.length === 0) return 'empty';
  // Before a resume too: VictoriaLogs opens a directory whatever marker it holds, and a resumed
  // restore rewrites the files that differ from the backup, the running database's among them.
  const holder = await lockHolderOf(dataDir);
  if (holder !== undefined) {
    throw new Error(
      `data directory ${dataDir} is in use by a running database (${holder > 0 ? `process ${holder}` : 'a process in another container'} holds its ${FLOCK_FILE}): ` +
        'stop the database first; restore never writes under a running one (as vmrestore does not)',
    );
  }
  const marker = join(dataDir, RESTORE_MARKER);
  const resume = req.resumeToken !== undefined && existing.includes(RESTORE_MARKER) && (await readFile(marker, 'utf8').catch(() => undefined)) === req.resumeToken;
  if (req.replace && !resume && !(await looksLikeDatabase(dataDir, existing))) {
    throw new Error(
      `data directory ${dataDir} is not empty (${existing.length} entries, e.g. ${existing.slice(0, 3).join(', ')}) and holds nothing of a VictoriaMetrics or VictoriaLogs data directory ` +
        `(${FLOCK_FILE}, partitions/, indexdb/, data/small, data/big or data/indexdb, ${RESTORE_MARKER}): a replace moves only a database's directory aside, not this one. ` +
        "Check the data directory's path; if it is right, move its contents away yourself and restore into it empty",
    );
  }
  if ((resume || req.replace) && !(await seesEveryLock())) {
    req.onWarning?.(
      `no database holds ${dataDir} as far as this process can see, but it runs in a PID namespace of its own (a container), where /proc/locks leaves out the locks of other containers: ` +
        `make sure no database in another pod or container runs on this directory, whose contents are about to be ${resume ? 'rewritten where they differ from the backup' : 'moved aside'}`,
    );
  }
  if (resume) return 'resume';
  if (!req.replace) {
    throw new DataDirNotEmptyError(
      `data directory ${dataDir} is not empty (${existing.length} entries, e.g. ${existing.slice(0, 3).join(', ')}): ` +
        'restore never overwrites data. Point --data-dir at an empty directory, or pass --replace to move the current contents aside (nothing is deleted).',
    );
  }
  return 'replace';
}
