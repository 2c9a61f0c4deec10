/**
 * The `file://` object store: one file per key under a root directory, in the same layout as
 * vmbackup's `fs://` remote, so `vmrestore -src=fs:///<root>/<backup>` reads what we write.
 *
 * - Writes are atomic: a temporary file (`.vpv-tmp-…`, never listed) in the target directory,
 *   fsync, rename, fsync of the directory. A reader sees the old object, the new one, or none.
 * - Copies are hard links where possible (free, and safe because objects are never modified in
 *   place: every write replaces the file), otherwise `copyFile` with copy-on-write (FICLONE) where
 *   the file system has it; both land under a temporary name first and are renamed.
 * - Listings walk the tree in S3 key order (UTF-8 bytes; a directory sorts as `name/`).
 * - Deleting a key removes directories it leaves empty, up to the root, with the temporary files
 *   that killed writes left in them (FileStoreOptions.staleTempMs); new directories and removals
 *   are fsynced too.
 * - Only regular files and directories are objects; symlinks and other entries are ignored.
 * - Unlike S3, `a` and `a/b` cannot both be keys (a path is a file or a directory).
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, type Dirent, type Stats } from 'node:fs';
import { copyFile, link, lstat, mkdir, open, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { StoreError } from './errors.js';
import { checkRange } from './byte-range.js';
import { forEachLimit } from './pool.js';
import { checkKey, checkPrefix, compareKeys, TEMP_PREFIX } from './keys.js';
import type { ByteRange, ObjectInfo, ObjectStore, PutBody } from './types.js';

export interface FileStoreOptions {
  /** Copy by hard link when source and target are on one file system (default true). */
  hardLinks?: boolean;
  /** fsync every written file and its directory (default true). Off only in tests. */
  fsync?: boolean;
  /**
   * A temporary file whose inode changed longer ago than this is the leftover of a killed write,
   * and is removed when a deletion empties its directory otherwise (default 1 hour). A live one's
   * ctime moves with every write, and a copy's hard link is renamed within microseconds.
   */
  staleTempMs?: number;
}

const STAT_BATCH = 64;
const STALE_TEMP_MS = 3600_000;

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

export class FileStore implements ObjectStore {
  readonly location: string;
  readonly root: string;
  private readonly hardLinks: boolean;
  private readonly fsync: boolean;
  private readonly staleTempMs: number;

  /** `root` must be an absolute directory path; it is created on the first write. */
  constructor(root: string, options: FileStoreOptions = {}) {
    if (!isAbsolute(root)) throw new StoreError('InvalidKey', `file store root must be an absolute path, got ${JSON.stringify(root)}`, { operation: 'open' });
    this.root = resolve(root);
    this.location = pathToFileURL(this.root).href;
    this.hardLinks = options.hardLinks ?? true;
    this.fsync = options.fsync ?? true;
    this.staleTempMs = options.staleTempMs ?? STALE_TEMP_MS;
  }

  private pathOf(key: string): string {
    return join(this.root, ...key.split('/'));
  }

  private target(key: string): string {
    return `${this.location}/${key}`;
  }

  private fail(operation: string, key: string, err: unknown, what?: string): StoreError {
    if (err instanceof StoreError) return err;
    const code = errno(err);
    const target = this.target(key);
    const message = `${operation} ${target} failed${what ? ` (${what})` : ''}: ${(err as Error)?.message ?? String(err)}`;
    return new StoreError(code === 'EACCES' || code === 'EPERM' ? 'AccessDenied' : 'Failed', message, { operation, target, backendCode: code, cause: err });
  }

  private notFound(operation: string, key: string, cause?: unknown): StoreError {
    const target = this.target(key);
    return new StoreError('NotFound', `${operation}: object ${target} does not exist`, { operation, target, backendCode: errno(cause), cause });
  }

  // ---- listing ----

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    checkPrefix(prefix, 'list');
    const slash = prefix.lastIndexOf('/');
    yield* this.walk(slash >= 0 ? prefix.slice(0, slash) : '', prefix);
  }

  /** Entries of the directory at `dirKey` ('' = root), sorted the way their keys sort; undefined if absent. */
  private async entries(dirKey: string): Promise<Array<{ name: string; dirent: Dirent }> | undefined> {
    let dirents: Dirent[];
    try {
      dirents = await readdir(dirKey ? this.pathOf(dirKey) : this.root, { withFileTypes: true });
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return undefined;
      throw this.fail('list', dirKey, err);
    }
    const items = dirents
      .filter((d) => !d.name.startsWith(TEMP_PREFIX) && (d.isFile() || d.isDirectory()))
      .map((d) => ({ name: d.name, dirent: d, sortKey: d.isDirectory() ? `${d.name}/` : d.name }));
    items.sort((a, b) => compareKeys(a.sortKey, b.sortKey));
    return items;
  }

  private async *walk(dirKey: string, prefix: string): AsyncGenerator<ObjectInfo> {
    const items = await this.entries(dirKey);
    if (!items) return;
    let files: string[] = [];
    const flush = async function* (this: FileStore): AsyncGenerator<ObjectInfo> {
      for (let i = 0; i < files.length; i += STAT_BATCH) {
        const batch = files.slice(i, i + STAT_BATCH);
        const stats = await Promise.all(batch.map((key) => stat(this.pathOf(key)).catch((err: unknown) => {
          if (errno(err) === 'ENOENT') return undefined; // deleted while listing
          throw this.fail('list', key, err);
        })));
        for (let j = 0; j < batch.length; j++) {
          const s = stats[j];
          if (s?.isFile()) yield { key: batch[j]!, size: s.size, lastModified: s.mtime };
        }
      }
      files = [];
    }.bind(this);
    for (const { name, dirent } of items) {
      const key = dirKey ? `${dirKey}/${name}` : name;
      if (dirent.isDirectory()) {
        const asDir = `${key}/`;
        if (asDir.startsWith(prefix) || prefix.startsWith(asDir)) {
          yield* flush();
          yield* this.walk(key, prefix);
        }
      } else if (key.startsWith(prefix)) {
        files.push(key);
      }
    }
    yield* flush();
  }

  async listDirectories(prefix: string): Promise<string[]> {
    checkPrefix(prefix, 'listDirectories');
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash >= 0 ? prefix.slice(0, slash) : '';
    const items = (await this.entries(dirKey)) ?? [];
    const out: string[] = [];
    for (const { name, dirent } of items) {
      const key = dirKey ? `${dirKey}/${name}` : name;
      // Like S3's CommonPrefixes: only "directories" that hold at least one object.
      if (dirent.isDirectory() && key.startsWith(prefix) && (await this.hasObject(key))) out.push(`${key}/`);
    }
    return out;
  }

  private async hasObject(dirKey: string): Promise<boolean> {
    const items = (await this.entries(dirKey)) ?? [];
    for (const { name, dirent } of items) {
      if (dirent.isFile()) return true;
      if (await this.hasObject(`${dirKey}/${name}`)) return true;
    }
    return false;
  }

  // ---- reading ----

  async head(key: string): Promise<ObjectInfo | undefined> {
    checkKey(key, 'head');
    let s: Stats;
    try {
      s = await stat(this.pathOf(key));
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return undefined;
      throw this.fail('head', key, err);
    }
    return s.isFile() ? { key, size: s.size, lastModified: s.mtime } : undefined;
  }

  async folderAbove(key: string): Promise<string | undefined> {
    checkKey(key, 'head');
    for (let dir = dirname(this.root); ; dir = dirname(dir)) {
      if (await stat(join(dir, ...key.split('/'))).then((s) => s.isFile(), () => false)) return pathToFileURL(dir).href;
      if (dirname(dir) === dir) return undefined;
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    checkKey(key, 'get');
    let fh;
    try {
      fh = await open(this.pathOf(key), 'r');
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR' || errno(err) === 'EISDIR') throw this.notFound('get', key, err);
      throw this.fail('get', key, err);
    }
    try {
      const s = await fh.stat();
      if (!s.isFile()) throw this.notFound('get', key);
      if (!range) return fh.createReadStream({ autoClose: true });
      checkRange(range, 'get', this.target(key), s.size);
      return fh.createReadStream({ start: range.start, end: Math.min(range.end, s.size - 1), autoClose: true });
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw this.fail('get', key, err);
    }
  }

  // ---- writing ----

  private tempPath(dir: string): string {
    return join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
  }

  /**
   * mkdir -p the object's directory (a concurrent delete may remove it again, so retry), then `fn`.
   * Directories it made are made durable after `fn`: each one's entry in its parent is fsynced, or
   * a crash could lose a renamed file with the directory that holds it.
   */
  private async withDir<T>(operation: string, key: string, fn: (dir: string) => Promise<T>): Promise<T> {
    const dir = dirname(this.pathOf(key));
    for (let attempt = 1; ; attempt++) {
      try {
        const made = await mkdir(dir, { recursive: true });
        const result = await fn(dir);
        if (made !== undefined) await this.syncNewParents(made, dir);
        return result;
      } catch (err) {
        if (errno(err) === 'ENOENT' && attempt < 5) continue;
        if (errno(err) === 'ENOTDIR' || errno(err) === 'EEXIST') {
          throw this.fail(operation, key, err, 'a parent of this key is an object: a key cannot be both an object and a "directory" in a file store');
        }
        if (errno(err) === 'EISDIR') throw this.fail(operation, key, err, 'other keys exist below this key: a key cannot be both an object and a "directory" in a file store');
        throw this.fail(operation, key, err);
      }
    }
  }

  /** fsync the parents of the directories mkdir made, from `dir`'s parent up to the first one's. */
  private async syncNewParents(firstMade: string, dir: string): Promise<void> {
    for (let d = dir; d !== firstMade && d.startsWith(firstMade); d = dirname(d)) await this.syncDir(dirname(d));
    await this.syncDir(dirname(firstMade));
  }

  private async syncDir(dir: string): Promise<void> {
    if (!this.fsync) return;
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  async put(key: string, body: PutBody, size: number): Promise<void> {
    checkKey(key, 'put');
    try {
      if (!Number.isSafeInteger(size) || size < 0) throw new StoreError('SizeMismatch', `put ${this.target(key)}: invalid size ${size}`, { operation: 'put', target: this.target(key) });
      if (Buffer.isBuffer(body) && body.length !== size) {
        throw new StoreError('SizeMismatch', `put ${this.target(key)}: the body has ${body.length} bytes, ${size} were announced`, { operation: 'put', target: this.target(key) });
      }
      let consumed = false;
      await this.withDir('put', key, async (dir) => {
        const tmp = this.tempPath(dir);
        const fh = await open(tmp, 'wx');
        try {
          if (Buffer.isBuffer(body)) {
            await fh.writeFile(body);
          } else {
            if (consumed) throw new StoreError('Failed', `put ${this.target(key)}: the target directory vanished while writing`, { operation: 'put', target: this.target(key) });
            consumed = true;
            let written = 0;
            for await (const chunk of body) {
              const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
              written += buf.length;
              if (written > size) throw new StoreError('SizeMismatch', `put ${this.target(key)}: the body is longer than the ${size} bytes announced`, { operation: 'put', target: this.target(key) });
              let off = 0;
              while (off < buf.length) off += (await fh.write(buf, off)).bytesWritten;
            }
            if (written !== size) throw new StoreError('SizeMismatch', `put ${this.target(key)}: the body ended after ${written} of the ${size} bytes announced`, { operation: 'put', target: this.target(key) });
          }
          if (this.fsync) await fh.sync();
          await fh.close();
          await rename(tmp, this.pathOf(key));
        } catch (err) {
          await fh.close().catch(() => undefined);
          await unlink(tmp).catch(() => undefined);
          throw err;
        }
        await this.syncDir(dir);
      });
    } catch (err) {
      if (body instanceof Readable) body.destroy(err as Error);
      throw this.fail('put', key, err);
    }
  }

  async copy(fromKey: string, toKey: string, size: number): Promise<void> {
    checkKey(fromKey, 'copy');
    checkKey(toKey, 'copy');
    const from = this.pathOf(fromKey);
    const to = this.pathOf(toKey);
    let source: Stats;
    try {
      source = await stat(from);
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') throw this.notFound('copy', fromKey, err);
      throw this.fail('copy', fromKey, err);
    }
    if (!source.isFile()) throw this.notFound('copy', fromKey);
    if (source.size !== size) {
      throw new StoreError('SizeMismatch', `copy ${this.target(fromKey)}: the object has ${source.size} bytes, ${size} were expected`, { operation: 'copy', target: this.target(fromKey) });
    }
    if (fromKey === toKey) return;
    const existing = await stat(to).catch(() => undefined);
    if (existing && existing.dev === source.dev && existing.ino === source.ino) return; // already the same file
    await this.withDir('copy', toKey, async (dir) => {
      const tmp = this.tempPath(dir);
      try {
        let linked = false;
        if (this.hardLinks) {
          try {
            await link(from, tmp);
            linked = true;
          } catch (err) {
            // Other file system, no hard links there, or the link count is exhausted: copy instead.
            if (!['EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP', 'EACCES'].includes(errno(err) ?? '')) throw err;
          }
        }
        if (!linked) {
          await copyFile(from, tmp, fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE);
          const copied = await stat(tmp);
          if (copied.size !== size) throw new StoreError('Changed', `copy ${this.target(fromKey)}: the object changed while it was copied`, { operation: 'copy', target: this.target(fromKey) });
          if (this.fsync) {
            const fh = await open(tmp, 'r');
            try {
              await fh.sync();
            } finally {
              await fh.close();
            }
          }
        }
        await rename(tmp, to);
        // rename() of two links to the same file does nothing and leaves the temporary name.
        await unlink(tmp).catch(() => undefined);
      } catch (err) {
        await unlink(tmp).catch(() => undefined);
        if (errno(err) === 'ENOENT' && !(await lstat(from).catch(() => undefined))) throw this.notFound('copy', fromKey, err);
        throw err;
      }
      await this.syncDir(dir);
    }).catch((err: unknown) => {
      throw this.fail('copy', toKey, err);
    });
  }

  async delete(keys: string[]): Promise<void> {
    for (const key of keys) checkKey(key, 'delete');
    const unique = [...new Set(keys)];
    const dirs = new Set<string>();
    await forEachLimit(unique, 16, async (key) => {
      try {
        await unlink(this.pathOf(key));
      } catch (err) {
        const code = errno(err);
        if (code === 'ENOENT' || code === 'ENOTDIR') return;
        if (code === 'EISDIR' || code === 'EPERM') {
          // A directory at this key is not an object (EPERM is Linux's answer to unlink(dir)).
          const s = await lstat(this.pathOf(key)).catch(() => undefined);
          if (s?.isDirectory()) return;
        }
        throw this.fail('delete', key, err);
      }
      if (key.includes('/')) dirs.add(key.slice(0, key.lastIndexOf('/')));
    });
    // Durable before returning: a removed complete marker must not come back after a crash, over
    // the new data of the re-run that removed it.
    const parents = new Set([...unique].map((k) => (k.includes('/') ? k.slice(0, k.lastIndexOf('/')) : '')));
    await Promise.all(
      [...parents].map((dir) =>
        this.syncDir(dir ? this.pathOf(dir) : this.root).catch((err: unknown) => {
          if (errno(err) !== 'ENOENT') throw this.fail('delete', dir, err, 'fsync of its directory');
        }),
      ),
    );
    await this.pruneDirs(dirs, commonFolder(unique));
  }

  /**
   * Removes the stale temporary files of killed writes below a directory that a deletion would
   * remove, and the subdirectories they leave empty (a killed backup can leave a part directory
   * with only a temporary file, which no listing shows and so no deletion visits); true when the
   * directory is then empty. Objects and recent temporary files stay, with their directories.
   */
  private async sweepTemps(path: string): Promise<boolean> {
    const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
    let empty = true;
    for (const e of entries) {
      const p = join(path, e.name);
      if (e.isDirectory()) {
        if ((await this.sweepTemps(p)) && (await rmdir(p).then(() => true, () => false))) continue;
      } else if (e.isFile() && e.name.startsWith(TEMP_PREFIX)) {
        const s = await lstat(p).catch(() => undefined);
        if (!s || (Date.now() - s.ctimeMs >= this.staleTempMs && (await unlink(p).then(() => true, () => false)))) continue;
      }
      empty = false;
    }
    return empty;
  }

  /**
   * Remove directories left empty, deepest first, up to (not including) the root. Temporary files
   * are swept only at or below `scope`, the folder of all deleted keys: above it (a workload's
   * folder of backups, when one backup goes) the walk would visit every other backup's files.
   */
  private async pruneDirs(dirs: Set<string>, scope: string): Promise<void> {
    const all = new Set<string>();
    for (let dir of dirs) {
      while (dir) {
        all.add(dir);
        const slash = dir.lastIndexOf('/');
        dir = slash >= 0 ? dir.slice(0, slash) : '';
      }
    }
    const ordered = [...all].sort((a, b) => b.split('/').length - a.split('/').length || compareKeys(b, a));
    let removed = false;
    for (const dir of ordered) {
      for (let swept = false; ; swept = true) {
        try {
          await rmdir(this.pathOf(dir));
          removed = true;
        } catch (err) {
          const code = errno(err) ?? '';
          const inScope = scope === '' || dir === scope || dir.startsWith(`${scope}/`);
          if ((code === 'ENOTEMPTY' || code === 'EEXIST') && !swept && inScope && (await this.sweepTemps(this.pathOf(dir)))) continue;
          if (!['ENOTEMPTY', 'EEXIST', 'ENOENT', 'ENOTDIR', 'EBUSY'].includes(code)) throw this.fail('delete', dir, err);
        }
        break;
      }
    }
    if (removed) await this.syncDir(this.root).catch(() => undefined);
  }
}

/** The deepest folder that holds all `keys` (`a/b` for `a/b/c/x` and `a/b/y`; '' at the root). */
export function commonFolder(keys: readonly string[]): string {
  let common: string[] | undefined;
  for (const key of keys) {
    const folders = key.split('/').slice(0, -1);
    if (!common) common = folders;
    else {
      let i = 0;
      while (i < common.length && i < folders.length && common[i] === folders[i]) i++;
      common = common.slice(0, i);
    }
  }
  return (common ?? []).join('/');
}
