/**
 * Restoring one backup into a data directory, before the database starts on it: every file is
 * downloaded (large ones in parallel ranges), its SHA-256 checked against the manifest, and a
 * `restore-in-progress` marker (which VictoriaMetrics refuses to start with) stays until all of
 * them are good. A non-empty target is refused unless replacing is asked for, and then the old
 * data is moved aside, never deleted. Object keys that would escape the target are refused.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import type { ObjectStore } from '../store/types.js';
import { openBackup } from './catalog.js';
import { checkRelPath, partKey, splitParts } from './layout.js';
import type { Manifest, ManifestFile } from './manifest.js';
import { forEachLimit } from './pool.js';
import type { Progress, ProgressListener } from './progress.js';

export const RESTORE_MARKER = 'restore-in-progress';
/** Files above this size are fetched as parallel ranged reads. */
const RANGED_THRESHOLD = 32 * 1024 * 1024;
const RANGE_SIZE = 16 * 1024 * 1024;

export interface RestoreRequest {
  store: ObjectStore;
  name: string;
  dataDir: string;
  /** Move existing contents aside instead of refusing a non-empty data directory. */
  replace?: boolean;
  concurrency?: number;
  onProgress?: ProgressListener;
}

export interface RestoreResult {
  manifest: Manifest;
  files: number;
  bytes: number;
  /** Where the previous contents went, when replacing. */
  movedAside?: string;
  durationSeconds: number;
}

/** Entries of `dir`, or [] when it does not exist. */
async function entriesOf(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/**
 * Move the contents of `dir` aside: the whole directory to a sibling when possible; when `dir` is a
 * mount point (a hostPath volume), its entries into a hidden folder inside it.
 */
async function moveAside(dir: string): Promise<string> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const sibling = `${dir.replace(/\/+$/, '')}-replaced-${stamp}`;
  try {
    await rename(dir, sibling);
    await mkdir(dir, { recursive: true });
    return sibling;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EBUSY' && code !== 'EXDEV' && code !== 'EPERM' && code !== 'EACCES') throw err;
  }
  const inside = join(dir, `.replaced-${stamp}`);
  await mkdir(inside);
  for (const entry of await readdir(dir)) if (entry !== basename(inside)) await rename(join(dir, entry), join(inside, entry));
  return inside;
}

function targetPath(dataDir: string, restoreTo: string, path: string): string {
  const rel = restoreTo ? `${checkRelPath(restoreTo, 'restore location')}/${checkRelPath(path)}` : checkRelPath(path);
  const abs = resolve(dataDir, rel);
  if (!abs.startsWith(resolve(dataDir) + sep)) throw new Error(`refusing ${rel}: it resolves outside ${dataDir}`);
  return abs;
}

async function writeAll(fh: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let written = 0;
  while (written < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, written, chunk.length - written, position + written);
    written += bytesWritten;
  }
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function restoreBackup(req: RestoreRequest): Promise<RestoreResult> {
  const started = Date.now();
  const { store, name } = req;
  const manifest = await openBackup(store, name);
  const dataDir = resolve(req.dataDir);
  const concurrency = req.concurrency ?? 4;

  // Every path is checked before anything is written.
  const jobs: Array<{ file: ManifestFile; prefix: string; path: string }> = [];
  for (const tree of manifest.trees) {
    for (const file of tree.files) jobs.push({ file, prefix: tree.prefix, path: targetPath(dataDir, tree.restoreTo, file.path) });
  }

  let movedAside: string | undefined;
  const existing = await entriesOf(dataDir);
  if (existing.length > 0) {
    if (!req.replace) {
      throw new Error(
        `data directory ${dataDir} is not empty (${existing.length} entries, e.g. ${existing.slice(0, 3).join(', ')}): ` +
          'restore never overwrites data. Point --data-dir at an empty directory, or pass --replace to move the current contents aside (nothing is deleted).',
      );
    }
    movedAside = await moveAside(dataDir);
  }
  await mkdir(dataDir, { recursive: true });
  const marker = join(dataDir, RESTORE_MARKER);
  await writeFile(marker, '', { flag: 'wx' });

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

  await forEachLimit(jobs, concurrency, async ({ file, prefix, path }) => {
    await mkdir(dirname(path), { recursive: true });
    // 'wx': never follow or overwrite anything that is already there.
    const fh = await open(path, 'wx');
    let sha: string;
    try {
      const parts = splitParts(file.path, file.size);
      if (file.size <= RANGED_THRESHOLD) {
        const hash = createHash('sha256');
        let position = 0;
        for (const part of parts) {
          let got = 0;
          if (part.size > 0) {
            for await (const c of await store.get(keyOf(prefix, part))) {
              const chunk = Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array);
              hash.update(chunk);
              await writeAll(fh, chunk, position);
              position += chunk.length;
              got += chunk.length;
              progress.bytesDone += chunk.length;
            }
          }
          if (got !== part.size) throw new Error(`${store.location}/${keyOf(prefix, part)} has ${got} bytes, the manifest says ${part.size}`);
        }
        sha = hash.digest('hex');
      } else {
        const ranges: Array<{ key: string; partOffset: number; start: number; end: number }> = [];
        for (const part of parts) {
          for (let start = 0; start < part.size; start += RANGE_SIZE) {
            ranges.push({ key: keyOf(prefix, part), partOffset: part.offset, start, end: Math.min(part.size, start + RANGE_SIZE) - 1 });
          }
        }
        await forEachLimit(ranges, 4, async (r) => {
          let position = r.partOffset + r.start;
          for await (const c of await store.get(r.key, { start: r.start, end: r.end })) {
            const chunk = Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array);
            await writeAll(fh, chunk, position);
            position += chunk.length;
            progress.bytesDone += chunk.length;
          }
          if (position !== r.partOffset + r.end + 1) throw new Error(`${store.location}/${r.key}: range ${r.start}-${r.end} returned ${position - r.partOffset - r.start} bytes`);
        });
        await fh.sync();
        sha = await sha256OfFile(path); // ranges arrive out of order: hash what landed on disk
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (sha !== file.sha256) {
      throw new Error(`checksum mismatch for ${file.path}: SHA-256 ${sha}, the manifest says ${file.sha256}; the backup object was changed or damaged (run verify)`);
    }
    progress.filesDone++;
    req.onProgress?.({ ...progress });
  });

  await rm(marker);
  progress.phase = 'done';
  req.onProgress?.({ ...progress });
  return { manifest, files: jobs.length, bytes: progress.bytesTotal, ...(movedAside ? { movedAside } : {}), durationSeconds: (Date.now() - started) / 1000 };
}
