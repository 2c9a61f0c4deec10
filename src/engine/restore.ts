/**
 * Restoring one backup into a data directory, before the database starts on it: every file is
 * downloaded, its SHA-256 checked against the manifest, and a `restore-in-progress` marker (which
 * VictoriaMetrics refuses to start with) stays until all of them are good and on disk. A non-empty
 * target is refused unless replacing is asked for, and then the old data is moved aside, never
 * deleted. Object keys that would escape the target are refused.
 *
 * Each object is fetched with one whole GET whose bytes are written in order as they arrive
 * (copied into large write buffers, written with O_DIRECT where the file system takes it:
 * file-writer.ts) and hashed from those buffers as they go to the file, so the checksum is of
 * the bytes written; then the file is fsynced; no file is read back. Stores
 * that can read without allocating per chunk (ObjectStore.readInto) are read so. RESTORE_CONCURRENCY
 * workers take the files largest first and twice as many take them smallest first (pool.ts
 * forEachFromBothEnds): a VictoriaMetrics backup is a few dozen large files and hundreds of small
 * ones, whose per-request latency then overlaps the large transfers instead of following them.
 * Files above vmbackup's 1 GiB part size have several objects, fetched one after the other.
 * Whole-object GETs rather than byte ranges: on S3-compatible servers that materialise the object
 * for every ranged GET (moto) ranges cost the server the whole object each time, and file-level
 * parallelism already keeps several connections busy, as vmrestore does.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chown, lstat, mkdir, open, readdir, readFile, realpath, rename, rm, rmdir, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { readObject } from '../store/read-object.js';
import type { ObjectStore } from '../store/types.js';
import { openBackup } from './catalog.js';
import { FLOCK_FILE, lockHolderOf } from './db-lock.js';
import { createFile, directIoWorks, FileWriter, syncDir, WriteBuffers } from './file-writer.js';
import { checkRelPath, partKey, splitParts } from './layout.js';
import type { Manifest, ManifestFile } from './manifest.js';
import { forEachFromBothEnds, forEachLimit } from '../store/pool.js';
import type { Progress, ProgressListener } from './progress.js';
import { RateLimiter } from './rate-limit.js';

export const RESTORE_MARKER = 'restore-in-progress';
/**
 * Where trees restored to a place of their own (VictoriaLogs partitions, `partitions/YYYYMMDD`)
 * are written until every file of the backup checked out; then each is renamed into place.
 * VictoriaLogs does not look for RESTORE_MARKER and opens every directory under `partitions/`, so
 * a restore that fails or is cut off must leave nothing there: here it leaves only this folder,
 * which VictoriaLogs does not read.
 */
export const RESTORE_STAGING = '.victoria-restoring';
/** Large files restored at once; twice as many small ones besides (vmrestore: 10 files in all). */
const RESTORE_CONCURRENCY = 8;

export interface RestoreRequest {
  store: ObjectStore;
  name: string;
  dataDir: string;
  /** Move existing contents aside instead of refusing a non-empty data directory. */
  replace?: boolean;
  onProgress?: ProgressListener;
  /** false: write through the page cache even where O_DIRECT works (default true; file-writer.ts). */
  directIo?: boolean;
  /** The most bytes per second the downloads take, all together (0 or absent: no limit; rate-limit.ts). */
  maxBytesPerSecond?: number;
  /**
   * Which restore this is (the restore plan's SHA-256 in the init container), written into the
   * `restore-in-progress` marker: a data directory whose marker names the same token holds only
   * what this same restore wrote before it was interrupted, and the restore resumes there.
   */
  resumeToken?: string;
  /**
   * The user (and group, when given) to own everything restored and the data directory itself:
   * a restore running as root for a database that runs as another user, in a directory the
   * kubelet created (root, 0755). Set before each file's fsync, so it is as durable as the data.
   * Needs root with the CHOWN capability. Absent: the restoring user owns it all.
   */
  chown?: FileOwner;
  /**
   * Runs when every file checked out and is durable, before the `restore-in-progress` marker
   * goes: what it writes (the init container's note of its plan) is there whenever the marker is not.
   */
  beforeUnmark?: () => Promise<void>;
}

export interface FileOwner {
  uid: number;
  /** Absent: the group stays the restoring user's. */
  gid?: number;
}

/** `uid` or `uid:gid`, for messages. */
export const formatOwner = (o: FileOwner): string => (o.gid === undefined ? String(o.uid) : `${o.uid}:${o.gid}`);

/** Gives `path` (open as `fh`, else by path) to `owner`; a refusal names what is needed. */
async function giveTo(owner: FileOwner, path: string, fh?: FileHandle): Promise<void> {
  const gid = owner.gid ?? -1; // -1: unchanged
  try {
    if (fh) await fh.chown(owner.uid, gid);
    else await chown(path, owner.uid, gid);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'EINVAL') throw err;
    throw new Error(
      `cannot give ${path} to user ${formatOwner(owner)} (${code}): giving the restored files to the database's user needs root with the CHOWN capability` +
        (code === 'EINVAL' ? ', and a user that exists in this user namespace' : ''),
      { cause: err },
    );
  }
}

/**
 * A refusal to read or write the data directory (the restore run as another user than the
 * directory's owner, a read-only mount), said with whose the directory is and what to do; other
 * errors as they are.
 */
async function withAccessHint(err: unknown, dataDir: string): Promise<unknown> {
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

export interface RestoreResult {
  manifest: Manifest;
  files: number;
  bytes: number;
  /** Where the previous contents went, when replacing. */
  movedAside?: string;
  /** Files an interrupted run of the same restore had already written and that checked out. */
  resumedFiles?: number;
  /** Whether the files were written with O_DIRECT. */
  directIo: boolean;
  /** Who was given the files (RestoreRequest.chown). */
  owner?: FileOwner;
  durationSeconds: number;
}

const LOST_AND_FOUND = 'lost+found';

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
async function realDir(dir: string): Promise<string> {
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
async function moveAside(dir: string): Promise<string> {
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
  const inside = join(dir, `.replaced-${stamp}`);
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
 * In a resumed restore: whether the file an interrupted run wrote is whole (its size and SHA-256
 * match the manifest) and can stay. One that is not was cut off by the interruption; it is removed,
 * to be downloaded again (only this same restore can have written it: see RestoreRequest.resumeToken).
 */
async function keepResumed(path: string, file: ManifestFile): Promise<boolean> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  if (size === file.size) {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
    if (hash.digest('hex') === file.sha256) return true;
  }
  await rm(path);
  return false;
}

/**
 * A file an interrupted run wrote whole, made durable (and given to `owner`): that run may have
 * been killed after its last write and before its fsync, and the hash above read the page cache.
 */
async function keepDurably(path: string, owner: FileOwner | undefined): Promise<void> {
  const fh = await open(path, 'r');
  try {
    if (owner) await giveTo(owner, path, fh);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function targetPath(dataDir: string, restoreTo: string, path: string): string {
  const rel = restoreTo ? `${checkRelPath(restoreTo, 'restore location')}/${checkRelPath(path)}` : checkRelPath(path);
  const abs = resolve(dataDir, rel);
  if (!abs.startsWith(resolve(dataDir) + sep)) throw new Error(`refusing ${rel}: it resolves outside ${dataDir}`);
  return abs;
}

/** A restore into a directory that holds data, without `replace`: callers add how to ask for it. */
export class DataDirNotEmptyError extends Error {}

/**
 * Whether a restore may write into `dataDir`: 'empty' (or missing), 'resume' (the same restore's
 * unfinished files, see RestoreRequest.resumeToken) or 'replace' (contents to move aside). Throws for a
 * directory a running database holds, and for a non-empty one without `replace`. Cheap and
 * read-only, so callers with a slow step before the restore (the plan's download) check first.
 */
export async function checkDataDir(dir: string, req: { replace?: boolean; resumeToken?: string }): Promise<'empty' | 'resume' | 'replace'> {
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
  if (req.resumeToken !== undefined && existing.includes(RESTORE_MARKER) && (await readFile(marker, 'utf8').catch(() => undefined)) === req.resumeToken) return 'resume';
  if (!req.replace) {
    throw new DataDirNotEmptyError(
      `data directory ${dataDir} is not empty (${existing.length} entries, e.g. ${existing.slice(0, 3).join(', ')}): ` +
        'restore never overwrites data. Point --data-dir at an empty directory, or pass --replace to move the current contents aside (nothing is deleted).',
    );
  }
  return 'replace';
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw err;
    },
  );
}

/** Adds the folders between `path` and `root` (both excluded) to `folders`. */
function addFoldersAbove(path: string, root: string, folders: Set<string>): void {
  for (let d = dirname(path); d.length > root.length && !folders.has(d); d = dirname(d)) folders.add(d);
}

/** Gives restored folders to `owner` (when given) and makes their entries durable. */
async function settleFolders(folders: Iterable<string>, owner: FileOwner | undefined): Promise<void> {
  await forEachLimit(folders, 16, async (d) => {
    if (owner) await giveTo(owner, d);
    await syncDir(d);
  });
}

/**
 * Renames the staged trees into place (each rename is atomic), durably, and removes the staging
 * folder, which is empty then; it never deletes anything else. The parent folders a rename needs
 * (`partitions/`) are created and given to `owner` like every other restored directory.
 */
async function placeStaged(staged: Array<{ from: string; to: string }>, staging: string, dataDir: string, owner: FileOwner | undefined): Promise<void> {
  const parents = new Set<string>();
  for (const { from, to } of staged) {
    addFoldersAbove(to, dataDir, parents);
    await mkdir(dirname(to), { recursive: true });
    await rename(from, to);
  }
  await settleFolders(parents, owner);
  // Also after a resume that found every tree in place already: the empty folders are left.
  await removeEmptyFolders(staging).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`the restore is in place, but ${staging} is not empty (${err.code}): look at what is in it, then remove it`, { cause: err });
  });
  if (staged.length > 0) await syncDir(dataDir);
}

/** Removes `dir` and the folders below it, all of which must be empty (rmdir: a file stops it). */
async function removeEmptyFolders(dir: string): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const e of entries) if (e.isDirectory()) await removeEmptyFolders(join(dir, e.name));
  await rmdir(dir);
}

/** What an object of the wrong size means, and what to do. */
const REPLACED = ': the object was changed after the backup completed; run verify on the backup, and restore another one';

export async function restoreBackup(req: RestoreRequest): Promise<RestoreResult> {
  const started = Date.now();
  const { store, name } = req;
  const manifest = await openBackup(store, name);
  const dataDir = await realDir(resolve(req.dataDir));
  const limiter = req.maxBytesPerSecond ? new RateLimiter(req.maxBytesPerSecond) : undefined;

  // Every path is checked before anything is written.
  for (const tree of manifest.trees) {
    for (const file of tree.files) targetPath(dataDir, tree.restoreTo, file.path);
  }

  let movedAside: string | undefined;
  const target = await checkDataDir(dataDir, req).catch(async (err: unknown) => {
    throw await withAccessHint(err, dataDir);
  });
  if (target === 'replace') movedAside = await moveAside(dataDir);
  const resuming = target === 'resume';
  // Trees with a place of their own go to the staging folder, except those an interrupted run of
  // this restore had renamed into place already.
  const staging = join(dataDir, RESTORE_STAGING);
  const staged: Array<{ from: string; to: string }> = [];
  const jobs: Array<{ file: ManifestFile; prefix: string; path: string }> = [];
  for (const tree of manifest.trees) {
    let base = dataDir;
    if (tree.restoreTo !== '' && !(resuming && (await exists(join(dataDir, tree.restoreTo))))) {
      base = staging;
      staged.push({ from: join(staging, tree.restoreTo), to: join(dataDir, tree.restoreTo) });
    }
    for (const file of tree.files) jobs.push({ file, prefix: tree.prefix, path: targetPath(base, tree.restoreTo, file.path) });
  }
  const marker = join(dataDir, RESTORE_MARKER);
  try {
    await mkdir(dataDir, { recursive: true });
    if (!resuming) await writeFile(marker, req.resumeToken ?? '', { flag: 'wx' });
  } catch (err) {
    throw await withAccessHint(err, dataDir);
  }
  let resumedFiles = 0;

  const progress: Progress = {
    phase: 'downloading',
    filesDone: 0,
    filesTotal: jobs.length,
    bytesDone: 0,
    bytesTotal: jobs.reduce((n, j) => n + j.file.size, 0),
    bytesUploaded: 0,
    bytesCopied: 0,
  };
  const keyOf = (prefix: string, part: ReturnType<typeof splitParts>[number]) => `${name}/${prefix}${partKey(part)}`;

  const dirs = new Set<string>();
  // Each file being written holds at most two buffers (one filling, one being written).
  const buffers = new WriteBuffers(2 * (RESTORE_CONCURRENCY + 2 * RESTORE_CONCURRENCY));
  const direct = req.directIo !== false && (await directIoWorks(dataDir, buffers));
  // Largest first for the front workers: a big file started last would download alone at the end.
  const order = [...jobs].sort((a, b) => b.file.size - a.file.size);
  await forEachFromBothEnds(order, RESTORE_CONCURRENCY, 2 * RESTORE_CONCURRENCY, async ({ file, prefix, path }) => {
    await mkdir(dirname(path), { recursive: true });
    addFoldersAbove(path, dataDir, dirs);
    if (resuming && (await keepResumed(path, file))) {
      await keepDurably(path, req.chown);
      resumedFiles++;
      progress.bytesDone += file.size;
    } else await download(file, prefix, path);
    progress.filesDone++;
    req.onProgress?.({ ...progress });
  });

  // The new directory entries (and owners) are durable before the marker goes.
  const owner = req.chown;
  await settleFolders([...dirs, dataDir], owner);
  await placeStaged(staged, staging, dataDir, owner);
  await req.beforeUnmark?.();
  await rm(marker);
  progress.phase = 'done';
  req.onProgress?.({ ...progress });
  return {
    manifest,
    files: jobs.length,
    bytes: progress.bytesTotal,
    ...(movedAside ? { movedAside } : {}),
    ...(resuming ? { resumedFiles } : {}),
    directIo: direct,
    ...(owner ? { owner } : {}),
    durationSeconds: (Date.now() - started) / 1000,
  };

  /** One file: its objects downloaded in order into the file, hashed as written, fsynced, checked. */
  async function download(file: ManifestFile, prefix: string, path: string): Promise<void> {
    const fh = await createFile(path, direct);
    const hash = createHash('sha256');
    try {
      const out = new FileWriter(fh, buffers, direct, path, hash);
      for (const part of splitParts(file.path, file.size)) {
        if (part.size === 0) continue;
        const key = keyOf(prefix, part);
        let got = 0;
        const sink = (chunk: Buffer): void | Promise<void> => {
          got += chunk.length;
          if (got > part.size) throw new Error(`${store.location}/${key} is longer than the ${part.size} bytes the manifest says${REPLACED}`);
          progress.bytesDone += chunk.length;
          const written = out.write(chunk);
          // The stores stop reading the connection while the sink waits (direct-get.ts), so the
          // limit holds the transfer back instead of buffering it.
          return limiter ? Promise.resolve(written).then(() => limiter.take(chunk.length)) : written;
        };
        await readObject(store, key, part.size, sink);
        if (got !== part.size) throw new Error(`${store.location}/${key} has ${got} bytes, the manifest says ${part.size}${REPLACED}`);
      }
      const written = await out.close();
      if (written !== file.size) throw new Error(`${path}: wrote ${written} bytes, the manifest says ${file.size}`);
      if (req.chown) await giveTo(req.chown, path, fh);
      await fh.sync();
    } finally {
      await fh.close();
    }
    const sha = hash.digest('hex');
    if (sha !== file.sha256) {
      throw new Error(`checksum mismatch for ${prefix}${file.path}: SHA-256 ${sha}, the manifest says ${file.sha256}; the backup object was changed or damaged (run verify)`);
    }
  }
}
