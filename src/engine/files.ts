/**
 * Snapshot files and where their bytes come from. The engine needs a file list (path, size, mtime)
 * and a reader; the reader is local files for the CLI, and a tar stream from the companion sidecar
 * for the Velero action. Both fit `FileReader`: entries are handed out in order and each stream
 * must be consumed before the next entry of a sequential reader arrives. A stream's chunk is valid
 * until the next one is asked for (local files are read into one buffer per file, reused).
 */
import { open, readdir, readlink, realpath, stat, type FileHandle } from 'node:fs/promises';
import { join, sep } from 'node:path';
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
 * only, skipping vmbackup's skip list. Unlike vmbackup, a link that leads nowhere is an error, not
 * skipped: VictoriaMetrics links every snapshot to directories that exist, so a dangling link means
 * that this process does not see part of the data (a volume mounted inside the data directory that
 * the companion does not mount), and skipping it would make a complete-looking backup without it.
 * With `within` (the data directory), every directory and file must really be inside it.
 */
export async function listSnapshotFiles(root: string, within?: string): Promise<SnapshotFile[]> {
  const out: SnapshotFile[] = [];
  const boundary = within === undefined ? undefined : await realpath(within);
  const inside = async (abs: string, relPath: string, real?: string): Promise<void> => {
    if (boundary !== undefined) await checkInside(abs, relPath || '.', boundary, real);
  };
  async function walk(dir: string, rel: string, ancestors: Set<string>): Promise<void> {
    const real = await realpath(dir);
    await inside(dir, rel, real);
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
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw await vanished(abs, relPath, err as Error);
        throw err;
      }
      if (st.isDirectory()) await walk(abs, relPath, next);
      else if (st.isFile() && !isSkippedFile(relPath)) {
        await inside(abs, relPath);
        out.push({ path: checkRelPath(relPath), size: st.size, mtimeMs: Math.trunc(st.mtimeMs) });
      }
    }
  }
  await walk(root, '', new Set());
  return out;
}

/**
 * Fails for a snapshot path whose real location is outside `dataDir` (a real path, as realpath
 * gives it): VictoriaMetrics and VictoriaLogs link only inside it, so a link elsewhere was planted
 * by someone who can write the data volume, and following it would copy files of this container
 * (a token, a key) into the backup.
 */
export async function checkInside(abs: string, relPath: string, dataDir: string, real?: string): Promise<void> {
  const r = real ?? (await realpath(abs));
  if (r === dataDir || r.startsWith(dataDir + sep)) return;
  const target = await readlink(abs).catch(() => undefined);
  throw new Error(
    `snapshot path ${relPath}${target === undefined ? '' : ` → ${target}`} resolves to ${r}, outside the data directory ${dataDir}: ` +
      'a database snapshot links only inside it; remove that link from the data volume',
  );
}

/**
 * A snapshot file opened for reading, if what was opened is inside `dataDir` (a real path): the
 * opened file must be the one at the path's real location (same device and inode), compared after
 * the open, so that a link replaced between the listing's check and the open (by someone who can
 * write the data volume) cannot lead the read to a file of this container.
 */
export async function openInside(abs: string, relPath: string, dataDir: string): Promise<FileHandle> {
  const fh = await open(abs, 'r');
  try {
    const [opened, real] = await Promise.all([fh.stat(), realpath(abs)]);
    await checkInside(abs, relPath, dataDir, real);
    const named = await stat(real);
    if (opened.dev !== named.dev || opened.ino !== named.ino) {
      throw new Error(`snapshot path ${relPath} was replaced while it was opened (a link changed): a database snapshot never changes; remove what replaced it from the data volume`);
    }
    return fh;
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** The error for an entry that readdir listed and stat cannot find: a dangling link, or a file deleted meanwhile. */
async function vanished(abs: string, relPath: string, cause: Error): Promise<Error> {
  const target = await readlink(abs).catch(() => undefined);
  if (target === undefined) {
    return new Error(`${relPath} disappeared while the snapshot was listed: was the snapshot deleted meanwhile (another backup's clean-up)? run the backup again`, { cause });
  }
  return new Error(
    `snapshot link ${relPath} → ${target} leads nowhere here: the data it links to is not visible to this process; ` +
      'mount the database\'s whole data directory (including any volume mounted inside it, e.g. at data/big) where the snapshot is read',
    { cause },
  );
}

const READ_CHUNK = 1 << 20;
/** 1 MiB read buffers kept for the next large file (beyond the files read at once, they would be garbage). */
const SPARE_BUFFERS = 16;

/**
 * A file's bytes, read into one buffer that is reused: each chunk is a view of it, valid until the
 * next chunk is asked for. A fresh buffer per read (what fs streams do) is external memory that V8
 * answers with a full garbage collection for about every 64 MiB: a backup of 1.3 GB ran about 20,
 * each marking the whole heap. Reads go on to the end of the file, so a file that grew since it
 * was listed is noticed by the engine.
 */
function reusingFileStream(path: string, size: number, spare: Buffer[], openFile: (path: string) => Promise<FileHandle>): FileStream {
  let destroyed = false;
  return {
    async *[Symbol.asyncIterator]() {
      // No larger than the file: most snapshot files are a few KiB.
      const large = size >= READ_CHUNK;
      const buf = large ? (spare.pop() ?? Buffer.allocUnsafe(READ_CHUNK)) : Buffer.allocUnsafe(Math.max(size, 1));
      const fh = await openFile(path);
      try {
        for (let position = 0; !destroyed; ) {
          const { bytesRead } = await fh.read(buf, 0, buf.length, position);
          if (bytesRead === 0) return;
          position += bytesRead;
          yield buf.subarray(0, bytesRead);
        }
      } finally {
        await fh.close();
        // Here the consumer is done with the last chunk (it asked for more, or stopped).
        if (large && spare.length < SPARE_BUFFERS) spare.push(buf);
      }
    },
    destroy() {
      destroyed = true;
    },
  };
}

/**
 * Reads files from a local directory; files are opened lazily, when their stream is read. With
 * `within` (the data directory, as listSnapshotFiles takes it), each file is opened only if it is
 * really inside (openInside).
 */
export function localFileReader(root: string, within?: string): FileReader {
  const spare: Buffer[] = [];
  let boundary: Promise<string> | undefined;
  return {
    async *read(files) {
      for (const file of files) {
        const relPath = checkRelPath(file.path);
        const openFile =
          within === undefined
            ? (path: string) => open(path, 'r')
            : async (path: string) => openInside(path, relPath, await (boundary ??= realpath(within)));
        yield { file, stream: reusingFileStream(join(root, relPath), file.size, spare, openFile) };
      }
    },
  };
}
