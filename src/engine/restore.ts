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
import { lstat, mkdir, open, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { readObject } from '../store/read-object.js';
import type { ObjectStore } from '../store/types.js';
import { openBackup } from './catalog.js';
import { checkDataDir, moveAside, realDir, RESTORE_MARKER, withAccessHint } from './data-dir.js';
import { giveTo, type FileOwner } from './file-owner.js';
import { createFile, directIoWorks, FileWriter, syncDir, WriteBuffers } from './file-writer.js';
import { checkRelPath, checkTreePlaces, partKey, splitParts } from './layout.js';
import type { Manifest, ManifestFile } from './manifest.js';
import { forEachFromBothEnds, forEachLimit } from '../store/pool.js';
import { heartbeat, type Progress, type ProgressListener } from './progress.js';
import { RateLimiter } from './rate-limit.js';

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
  /** Hears what the restore cannot check and the user must (checkDataDir). */
  onWarning?: (message: string) => void;
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
    // A tree without files has nothing staged; it is placed as the empty folder it was.
    await mkdir(from, { recursive: true });
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

  // Every path is checked before anything is written: each tree's place, also of a tree without files.
  checkTreePlaces(manifest.trees);
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
  const stopHeartbeat = req.onProgress ? heartbeat(() => req.onProgress?.({ ...progress })) : undefined;
  try {
    await forEachFromBothEnds(order, RESTORE_CONCURRENCY, 2 * RESTORE_CONCURRENCY, async ({ file, prefix, path }, stop) => {
      stop.throwIfAborted();
      await mkdir(dirname(path), { recursive: true });
      addFoldersAbove(path, dataDir, dirs);
      if (resuming && (await keepResumed(path, file))) {
        await keepDurably(path, req.chown);
        resumedFiles++;
        progress.bytesDone += file.size;
      } else await download(file, prefix, path, stop);
      progress.filesDone++;
      req.onProgress?.({ ...progress });
    });
  } finally {
    stopHeartbeat?.();
  }

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

  /**
   * One file: its objects downloaded in order into the file, hashed as written, fsynced, checked.
   * Once another file failed (`stop`), the next chunk ends the download: the restore fails anyway.
   */
  async function download(file: ManifestFile, prefix: string, path: string, stop: AbortSignal): Promise<void> {
    const fh = await createFile(path, direct);
    const hash = createHash('sha256');
    try {
      const out = new FileWriter(fh, buffers, direct, path, hash);
      for (const part of splitParts(file.path, file.size)) {
        if (part.size === 0) continue;
        const key = keyOf(prefix, part);
        let got = 0;
        const sink = (chunk: Buffer): void | Promise<void> => {
          stop.throwIfAborted();
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
