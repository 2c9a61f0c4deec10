/**
 * The journal of a backup under way: which files are in its folder already, with the SHA-256 each
 * was hashed to on the way. A re-run into the same name after the backup was killed, lost its
 * connection or failed keeps those files instead of uploading them again, as vmbackup resumes into
 * the same -dst ("automatically resumed from the interruption point").
 *
 * Written as small segments beside the backup's objects every few seconds, each holding the files
 * finished since the one before: a rewrite of one object would cost a backup of 100 000 files
 * megabytes every few seconds. Keys end in `.ignore`, so vmrestore skips them; the check before the
 * complete marker lists them with the backup's objects, and they are deleted after the marker.
 * A folder that holds a complete marker has its journal passed over (readJournal's caller).
 *
 * Nothing in a journal is trusted on its own: a file is kept only when the snapshot has it with
 * the same path, size and mtime (the rule that decides "unchanged" for a server-side copy) and
 * the listing of the folder shows every one of its objects at its size (sizes only: an object's
 * ETag is not known while it is written; `verify` reads every byte).
 */
import { StoreError } from '../store/errors.js';
import { forEachLimit } from '../store/pool.js';
import { readWholeObject } from '../store/read-object.js';
import type { ObjectStore } from '../store/types.js';
import { FolderTakenError } from './backup-folder.js';
import { MAX_MANIFEST_BYTES, type ManifestFile } from './manifest.js';
import { isManifestFile } from './manifest-shape.js';

export const JOURNAL_PREFIX = 'victoria_journal_';
/** How often finished files are written down: what a kill can cost again is this much of the upload. */
const FLUSH_MS = 2000;
/** One segment's write: past it the files wait for the next one (the store is in trouble; the uploads will say so). */
const WRITE_TIMEOUT_MS = 10_000;

/** The files a journal names, per tree (its prefix), by path; a file written twice is as its last entry says. */
export type Journaled = Map<string, Map<string, ManifestFile>>;

/** One line of a segment: a tree's prefix and the file as the manifest would record it. */
interface Line {
  prefix: string;
  file: ManifestFile;
}

export class JournalWriter {
  private pending: string[] = [];
  private written = 0;
  private seq = 0;
  /** The segment writes, one at a time and in order. */
  private writing: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  /** Segment keys sort by the run's start, so that a later run's entries come after an earlier one's. */
  private readonly keyBase: string;

  /**
   * `store` without the backup's own signal: an interrupted backup still writes down what it
   * finished (each write bounded by WRITE_TIMEOUT_MS instead). `stillOurs` fails with
   * FolderTakenError once another run of the name took the folder: then nothing more is written.
   */
  constructor(
    private readonly store: ObjectStore,
    name: string,
    started: number,
    run: string,
    private readonly stillOurs: (store: ObjectStore) => Promise<void>,
  ) {
    this.keyBase = `${name}/${JOURNAL_PREFIX}${String(started).padStart(15, '0')}_${run.slice(0, 8)}_`;
    this.timer = setInterval(() => void this.flush(), FLUSH_MS);
    // Never keeps the process alive by itself.
    this.timer.unref();
  }

  /** Entries in the segments written so far: what a failed backup leaves for a later one to take over. */
  get filesWritten(): number {
    return this.written;
  }

  add(prefix: string, file: ManifestFile): void {
    this.pending.push(JSON.stringify({ prefix, file } satisfies Line));
  }

  /** Writes what finished since the last segment; resolves when it is written (or has failed: the entries wait for the next). */
  flush(): Promise<void> {
    this.writing = this.writing.then(() => this.writeSegment());
    return this.writing;
  }

  /** No more periodic writes; a write under way finishes. With `last`, what finished since the last segment is written first. */
  async close(last: boolean): Promise<void> {
    clearInterval(this.timer);
    if (last) await this.flush();
    else await this.writing;
  }

  private async writeSegment(): Promise<void> {
    if (this.pending.length === 0) return;
    const lines = this.pending;
    this.pending = [];
    const store = this.store.withSignal?.(AbortSignal.timeout(WRITE_TIMEOUT_MS)) ?? this.store;
    try {
      // A run that lost the folder would leave segments in the other run's backup.
      await this.stillOurs(store);
      const body = Buffer.from(`${lines.join('\n')}\n`);
      await store.put(`${this.keyBase}${String(this.seq++).padStart(6, '0')}.ignore`, body, body.length);
      this.written += lines.length;
    } catch (err) {
      if (err instanceof FolderTakenError) {
        clearInterval(this.timer);
        return;
      }
      // Only a re-run's saving is lost; the backup itself goes on (or fails for its own reasons).
      this.pending = [...lines, ...this.pending];
    }
  }
}

/** The files the journal of the folder `name` names (empty when it has none). */
export async function readJournal(store: ObjectStore, name: string): Promise<Journaled> {
  const journaled: Journaled = new Map();
  const keys: string[] = [];
  for await (const obj of store.list(`${name}/${JOURNAL_PREFIX}`)) keys.push(obj.key);
  keys.sort();
  // A long run of small files leaves thousands of segments: read several at once.
  const segments: Array<Buffer | undefined> = [];
  await forEachLimit(keys.entries(), 8, async ([i, key]) => {
    try {
      segments[i] = await readWholeObject(store, key, MAX_MANIFEST_BYTES);
    } catch (err) {
      // Removed since the listing (a run of this name completing): nothing of it is kept.
      if (!(err instanceof StoreError && err.code === 'NotFound')) throw err;
    }
  });
  // In key order, the order the runs and their segments were written in: a later entry wins.
  for (const bytes of segments) {
    if (!bytes) continue;
    for (const text of bytes.toString('utf8').split('\n')) {
      const line = parseLine(text);
      if (!line) continue;
      let tree = journaled.get(line.prefix);
      if (!tree) journaled.set(line.prefix, (tree = new Map()));
      tree.set(line.file.path, line.file);
    }
  }
  return journaled;
}

/**
 * A line as JournalWriter writes it, or undefined. A line that is cut (the segment of an older
 * version, or damaged) only means its file is uploaded again.
 */
function parseLine(text: string): Line | undefined {
  if (text === '') return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  const { prefix, file } = (v ?? {}) as { prefix?: unknown; file?: unknown };
  if (typeof prefix !== 'string' || !isManifestFile(file)) return undefined;
  const { path, size, mtimeMs, sha256, origin } = file;
  return { prefix, file: { path, size, mtimeMs, sha256, origin } };
}
