/**
 * Snapshot files and where their bytes come from. The engine needs a file list (path, size, mtime)
 * and a reader; the reader is local files for the CLI, and a tar stream from the companion sidecar
 * for the Velero action. Both fit `FileReader`: entries are handed out in order and each stream
 * must be consumed before the next entry of a sequential reader arrives.
 */
import { createReadStream } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { checkRelPath, isSkippedFile } from './layout.js';

export interface SnapshotFile {
  /** Path inside the tree, `/`-separated. */
  path: string;
  size: number;
  mtimeMs: number;
}

/** A file's bytes: a Node stream for local files, a tar-stream entry for the companion's tar. */
export interface FileStream extends AsyncIterable<Buffer> {
  destroy(err?: Error): void;
}

export interface FileEntry {
  file: SnapshotFile;
  stream: FileStream;
}

export interface FileReader {
  /** Yield a stream for each requested file, in the given order. */
  read(files: SnapshotFile[]): AsyncIterable<FileEntry>;
}

/**
 * List a snapshot directory as vmbackup does (B.2): recursively, following symlinks (VictoriaMetrics'
 * `snapshots/<name>/data/small` is a link), naming files by the path through the link, regular files
 * only, skipping broken links and vmbackup's skip list.
 */
export async function listSnapshotFiles(root: string): Promise<SnapshotFile[]> {
  const out: SnapshotFile[] = [];
  async function walk(dir: string, rel: string, ancestors: Set<string>): Promise<void> {
    const real = await realpath(dir);
    if (ancestors.has(real)) throw new Error(`symlink loop at ${dir}: a snapshot never links to its own ancestors`);
    const next = new Set(ancestors).add(real);
    const entries = await readdir(dir);
    entries.sort();
    for (const name of entries) {
      const abs = join(dir, name);
      const relPath = rel ? `${rel}/${name}` : name;
      let st;
      try {
        st = await stat(abs); // follows symlinks
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // broken link
        throw err;
      }
      if (st.isDirectory()) await walk(abs, relPath, next);
      else if (st.isFile() && !isSkippedFile(relPath)) out.push({ path: checkRelPath(relPath), size: st.size, mtimeMs: Math.trunc(st.mtimeMs) });
    }
  }
  await walk(root, '', new Set());
  return out;
}

const READ_CHUNK = 1 << 20;

/** Reads files from a local directory; streams are opened lazily so several can be read at once. */
export function localFileReader(root: string): FileReader {
  return {
    async *read(files) {
      // Reads of at most 1 MiB, and no larger than the file: most snapshot files are a few KiB, and a
      // 1 MiB buffer for each would be garbage that costs collection time.
      for (const file of files) {
        yield { file, stream: createReadStream(join(root, checkRelPath(file.path)), { highWaterMark: Math.min(READ_CHUNK, Math.max(file.size, 1)) }) };
      }
    },
  };
}
