/**
 * Writing one backup (docs/velero-backup.md, "How a backup flows"): every file of every tree goes into the store in the
 * vmbackup layout, unchanged files are copied server-side from the newest complete backup, every
 * object is checked, stale objects are removed, then the manifest, vmbackup's markers, and our
 * complete marker last. A backup interrupted anywhere before that last write is incomplete to
 * every reader, including a re-run into the same name, which starts by removing the markers.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { StoreError } from '../store/errors.js';
import type { ObjectInfo, ObjectStore } from '../store/types.js';
import type { FileReader, SnapshotFile } from './files.js';
import { checkBackupName, checkFolderIsOurs, checkStillOurs, FolderTakenError, withKept, withRemoval } from './backup-folder.js';
import { uploadFile } from './file-upload.js';
import { checkRelPath, checkTreePlaces, isMutableFile, partKey, splitParts, VM_COMPLETE_MARKER, VM_METADATA_MARKER, type Part } from './layout.js';
import {
  COMPLETE_KEY,
  IN_PROGRESS_KEY,
  MANIFEST_FORMAT,
  MANIFEST_KEY,
  type CompleteMarker,
  type Manifest,
  type ManifestFile,
  type ManifestTree,
  type SourceKind,
  serializeManifest,
} from './manifest.js';
import { JOURNAL_PREFIX, JournalWriter, readJournal, type Journaled } from './journal.js';
import { forEachLimit, Semaphore } from '../store/pool.js';
import { heartbeat, type Progress, type ProgressListener } from './progress.js';
import { RateLimiter } from './rate-limit.js';

export interface BackupTreeInput {
  /** '' for a VictoriaMetrics backup, 'partitions/YYYYMMDD/' for a VictoriaLogs partition. */
  prefix: string;
  /** Where it is restored under the data directory. */
  restoreTo: string;
  files: SnapshotFile[];
  reader: FileReader;
}

/** A count for the manifest: the flattened values and the counted range (Manifest.countedFrom, countedBefore). */
export interface BackupCounts {
  counts: Record<string, number>;
  countedFrom?: string;
  countedBefore?: string;
}

export interface BaseBackup {
  name: string;
  manifest: Manifest;
}

export interface BackupRequest {
  store: ObjectStore;
  /** Folder of this backup under the store root. */
  name: string;
  kind: SourceKind;
  trees: BackupTreeInput[];
  source: Manifest['source'];
  /**
   * What the database held, for the manifest. May be a promise (made with pendingCounts): the count
   * queries scan every sample server-side (seconds per GiB), so a caller can run them while the files
   * upload; they are awaited only when the manifest is written. A failed count does not fail the
   * backup (the data is complete; counts only serve verification): the manifest then records `countsError`.
   */
  counted: BackupCounts | Promise<BackupCounts>;
  /** When the snapshot was taken (vmbackup's created_at). */
  createdAt: Date;
  /** The newest complete backup of the same workload; unchanged files are copied from it. */
  base?: BaseBackup;
  /**
   * Files larger than 1 MiB read and uploaded at once (default 4); as many small files again may
   * go up beside them, since a small file costs a request's latency but hardly any memory.
   */
  concurrency?: number;
  /** The most bytes per second the uploads send, all together (0 or absent: no limit; rate-limit.ts). */
  maxBytesPerSecond?: number;
  /**
   * What a failure after the guards (once the folder is ours to write) leaves of the folder.
   * 'keep' (the default; the CLI): the folder stays with its journal (journal.ts), incomplete, which
   * `list` shows and restore refuses, until the user removes it or a re-run into the same name
   * resumes it. 'keep-journaled' (the Velero action, whose failed item is not in Velero's backup,
   * so no delete action runs for it): the folder stays when its journal names a finished file, for
   * a later backup to take over (resumeFrom) and then remove; a folder with nothing worth keeping
   * is removed, and the error says which.
   */
  onFailure?: 'keep' | 'keep-journaled';
  /**
   * Another folder under the same root, left incomplete by a failed backup of the same source
   * (onFailure 'keep-journaled'): the files its journal names that the snapshot still has unchanged
   * are copied from it server-side instead of uploaded (Manifest.resumedFrom). Files the base
   * holds unchanged are copied from the base, whose manifest vouches for them.
   */
  resumeFrom?: string;
  onProgress?: ProgressListener;
  /**
   * Stops the backup: no copy or upload starts once it is aborted, uploads under way end at their
   * next chunk, no later step runs (the backup stays incomplete), and the backup fails with its
   * reason. The Velero action's item timeout; the CLI's Ctrl-C.
   */
  signal?: AbortSignal;
}

/**
 * Counts that arrive while the files upload. A count can fail before writeBackup awaits it (while
 * the caller is still listing files, or when an upload fails first): that must not become an
 * unhandled rejection, which ends the process; writeBackup records the failure as `countsError`.
 */
export function pendingCounts(counts: Promise<BackupCounts>): Promise<BackupCounts> {
  counts.catch(() => undefined);
  return counts;
}

/** Files up to this size are "small": one PutObject of at most this many bytes in memory. */
const SMALL_FILE = 1024 * 1024;
/**
 * Copies in a row that fail past their retries (5xx, timeouts, an unreachable endpoint) before the
 * backup gives up on the store: one round of the copies in flight at the default concurrency.
 */
const COPY_TROUBLE_LIMIT = 16;
/**
 * How long removing the objects of a failed attempt that finished nothing may take (a listing and
 * a few batched deletes when the store works); past it, the error says what is left.
 */
const REMOVAL_TIMEOUT_MS = 120_000;

function treeKey(name: string, prefix: string, key: string): string {
  return `${name}/${prefix}${key}`;
}

/** Unchanged = same path, size and mtime, and not a file whose content changes in place. */
function unchanged(file: SnapshotFile, previous: ManifestFile | undefined): previous is ManifestFile {
  return previous !== undefined && !isMutableFile(file.path) && previous.size === file.size && previous.mtimeMs === file.mtimeMs;
}

export async function writeBackup(request: BackupRequest): Promise<Manifest> {
  const started = Date.now();
  // The signal ends the requests in flight as well (a hung store must not outlast the deadline).
  const req = request.signal && request.store.withSignal ? { ...request, store: request.store.withSignal(request.signal) } : request;
  const { store, name } = req;
  const onFailure = req.onFailure ?? 'keep';
  checkBackupName(name);
  if (req.resumeFrom !== undefined) checkBackupName(req.resumeFrom);
  checkTreePlaces(req.trees);
  await checkFolderIsOurs(store, name, req.kind);
  const run = randomUUID();
  // What an interrupted earlier run finished: of this name, read before this run's marker replaces
  // its own, or of the failed attempt resumeFrom names. A complete folder's journal is a left-over
  // (its removal failed, or a run that had lost the folder wrote it): its files are found through
  // the manifest instead (an in-place base).
  const from = req.resumeFrom ?? name;
  const readResumable = async (): Promise<Journaled> => ((await store.head(`${from}/${COMPLETE_KEY}`)) ? new Map() : readJournal(store, from));
  // Another folder's journal is only a saving: one that cannot be read is taken over by nothing.
  const journaled = req.resumeFrom === undefined ? await readResumable() : await readResumable().catch((): Journaled => new Map());
  const inProgress = Buffer.from(JSON.stringify({ format: MANIFEST_FORMAT, kind: req.kind, startedAt: new Date(started).toISOString(), run }));
  await store.put(`${name}/${IN_PROGRESS_KEY}`, inProgress, inProgress.length);
  // Without the backup's signal: an interrupted run still writes down what it finished.
  const journal = new JournalWriter(request.store, name, started, run, (s) => checkStillOurs(s, name, run));
  try {
    // A re-run into the same name must never leave an old complete marker over new, partial data.
    await store.delete([`${name}/${COMPLETE_KEY}`, ...req.trees.map((t) => treeKey(name, t.prefix, VM_COMPLETE_MARKER))]);
    return await new FolderWriter(req, started, run, { from, journaled }, journal).write();
  } catch (err) {
    // A run that lost the folder to another of the same name writes nothing more into it, nor
    // may it remove that one's objects.
    if (err instanceof FolderTakenError) {
      await journal.close(false);
      throw err;
    }
    await journal.close(true);
    if (onFailure === 'keep' || journal.filesWritten > 0) {
      const error = onFailure === 'keep' ? err : withKept(err, request.store, name, journal.filesWritten);
      if (typeof error === 'object' && error !== null) LEFT_INCOMPLETE.add(error);
      throw error;
    }
    // Under a deadline of its own: the backup's signal may be what ended it.
    const cleanUp = request.store.withSignal?.(AbortSignal.timeout(REMOVAL_TIMEOUT_MS)) ?? request.store;
    throw await withRemoval(err, cleanUp, name);
  }
}

/** Errors of backups that failed after their folder became theirs, which stays for a re-run to resume. */
const LEFT_INCOMPLETE = new WeakSet<object>();

/**
 * Whether `err` ended a backup whose folder stays, incomplete, with a journal of what it finished:
 * a backup into the same name resumes it (the CLI says so).
 */
export function leftIncomplete(err: unknown): boolean {
  return typeof err === 'object' && err !== null && LEFT_INCOMPLETE.has(err);
}

/** The manifest's fields for what the database held. */
type ManifestCounts = Pick<Manifest, 'counts' | 'countsError' | 'countedFrom' | 'countedBefore'>;

/** The counts once they are in; a failed count is recorded as `countsError` rather than failing the backup (BackupRequest.counted). */
function settledCounts(counted: BackupCounts | Promise<BackupCounts>): Promise<ManifestCounts> {
  return Promise.resolve(counted).then(
    (c): ManifestCounts => ({
      counts: c.counts,
      ...(c.countedFrom ? { countedFrom: c.countedFrom } : {}),
      ...(c.countedBefore ? { countedBefore: c.countedBefore } : {}),
    }),
    (err: unknown) => ({ counts: {}, countsError: err instanceof Error ? err.message : String(err) }),
  );
}

/**
 * Which files of a tree are copied from the base backup (unchanged, with their entry in its
 * manifest) and which are uploaded. Checks every path first, before anything is written for it.
 */
function sortOut(files: SnapshotFile[], previous: Map<string, ManifestFile>, base: BaseBackup | undefined): { toCopy: Array<[SnapshotFile, ManifestFile]>; toUpload: SnapshotFile[] } {
  const toUpload: SnapshotFile[] = [];
  const toCopy: Array<[SnapshotFile, ManifestFile]> = [];
  for (const file of files) {
    checkRelPath(file.path);
    const prev = previous.get(file.path);
    if (base && unchanged(file, prev)) toCopy.push([file, prev]);
    else toUpload.push(file);
  }
  return { toCopy, toUpload };
}

/**
 * A base object that a copy would take: there, of the size the base's manifest gives it, and, where
 * the manifest recorded its ETag, still that version (a same-size replacement is caught only so).
 */
function checkBaseObject(store: ObjectStore, key: string, size: number, etag: string | undefined, baseObjects: Map<string, ObjectInfo>): void {
  const found = baseObjects.get(key);
  let what: string;
  if (found === undefined) what = 'is missing';
  else if (found.size !== size) what = `has ${found.size} bytes, its manifest says ${size}`;
  else if (etag !== undefined && found.etag !== undefined && found.etag !== etag) what = `was replaced since the base backup was written (its ETag is ${found.etag}, the base's manifest says ${etag})`;
  else return;
  throw new Error(`${store.location}/${key} ${what}: the base backup is damaged (find every bad file with verify), so the file was uploaded`);
}

/** A file's recorded ETags, one per part, or none where the manifest has none for each part. */
function recordedEtags(file: ManifestFile, parts: Part[]): Array<string | undefined> {
  return file.etags?.length === parts.length ? file.etags : parts.map(() => undefined);
}

/**
 * What a failed server-side copy means. 'refused': this copy cannot be made (the base object is
 * gone, damaged or not readable by us, or the server will not copy), so the file is uploaded
 * instead. 'fatal': the store refuses us (credentials, configuration): an upload would fail too.
 * 'trouble': the store failed past its retries, which may be this copy's alone; the file is
 * uploaded instead, but a run of them with no copy succeeding means the store is down (see
 * COPY_TROUBLE_LIMIT).
 */
function copyFailure(err: unknown): 'refused' | 'trouble' | 'fatal' {
  if (!(err instanceof StoreError)) return 'refused'; // checkBaseObject: the base backup is damaged
  switch (err.code) {
    case 'Credentials':
    case 'Config':
      return 'fatal';
    case 'Failed':
      // 501: a server without (UploadPart)Copy. Other 5xx past the retries, timeouts, resets and
      // an unreachable endpoint may be the copy's own trouble (a long copy, copy-rate throttling,
      // an unreadable base file) or the store's.
      return err.status === undefined || (err.status >= 500 && err.status !== 501) ? 'trouble' : 'refused';
    default:
      return 'refused';
  }
}

/** What the check's listing found: the backup's objects with their ETags (undefined where the store has none), and the journal's segments. */
interface Checked {
  etags: Map<string, string | undefined>;
  /** Removed once the backup is complete: until then a failure after the check can still be resumed. */
  journal: string[];
}

/**
 * Check every object (vmbackup checks each upload's size; we check the listing, which also finds
 * stale objects of an earlier attempt that vmrestore would otherwise restore), and remove the stale ones.
 */
async function checkObjects(store: ObjectStore, name: string, trees: ManifestTree[], stillOurs: () => Promise<void>): Promise<Checked> {
  // Each object written and not listed yet, with its size; once listed, it moves to `etags`, so
  // that a backup of many files holds one entry per object rather than three.
  const expected = new Map<string, number>();
  for (const tree of trees) {
    for (const f of tree.files) for (const part of splitParts(f.path, f.size)) expected.set(treeKey(name, tree.prefix, partKey(part)), part.size);
  }
  const ours = new Set([`${name}/${MANIFEST_KEY}`, `${name}/${IN_PROGRESS_KEY}`, ...trees.map((t) => treeKey(name, t.prefix, VM_METADATA_MARKER))]);
  const stale = new Set<string>();
  const etags = new Map<string, string | undefined>();
  const journal: string[] = [];
  for await (const obj of store.list(`${name}/`)) {
    const size = expected.get(obj.key);
    if (size === undefined) {
      // A key listed twice (a server that repeats an entry across pages) is still one of ours, never stale.
      if (etags.has(obj.key)) continue;
      if (obj.key.startsWith(`${name}/${JOURNAL_PREFIX}`)) journal.push(obj.key);
      else if (!ours.has(obj.key)) stale.add(obj.key);
      continue;
    }
    if (obj.size !== size) throw new Error(`${store.location}/${obj.key} has ${obj.size} bytes in the store, ${size} were written`);
    expected.delete(obj.key);
    etags.set(obj.key, obj.etag);
  }
  if (expected.size > 0) throw new Error(`${expected.size} object(s) missing from ${store.location}/${name}/ after upload, e.g. ${expected.keys().next().value}`);
  if (stale.size === 0) return { etags, journal };
  await stillOurs();
  // Complete markers first (ours, and vmbackup's of an earlier attempt's tree that this run no
  // longer has): a deletion that fails halfway must not leave one over a tree whose parts are gone.
  const markers = [...stale].filter((key) => key === `${name}/${COMPLETE_KEY}` || key.endsWith(`/${VM_COMPLETE_MARKER}`));
  if (markers.length > 0) await store.delete(markers);
  await store.delete([...stale].filter((key) => !markers.includes(key)));
  return { etags, journal };
}

/** The trees with each file's ETags from the check's listing (ManifestFile.etags), where the store gave one for every part. */
function withEtags(name: string, trees: ManifestTree[], etags: Map<string, string | undefined>): ManifestTree[] {
  return trees.map((tree) => ({
    ...tree,
    files: tree.files.map((file) => {
      const found = splitParts(file.path, file.size).map((part) => etags.get(treeKey(name, tree.prefix, partKey(part))));
      return found.every((e) => e !== undefined) ? { ...file, etags: found } : file;
    }),
  }));
}

/**
 * Everything after the guards: uploads and copies, the check, the manifest, the markers. A class
 * because the copies and the uploads of every tree add to one progress, reported as it changes,
 * and the manifest records its totals and the copies refused along the way.
 */
class FolderWriter {
  private readonly store: ObjectStore;
  private readonly name: string;
  private readonly concurrency: number;
  private readonly limiter: RateLimiter | undefined;
  private readonly progress: Progress;
  /** Copies the server refused (each became an upload), and the first one's error, for the manifest. */
  private readonly refused: { count: number; first?: string } = { count: 0 };
  /** Files an interrupted earlier run of this name had finished, found in place (Manifest.resumed). */
  private readonly resumed = { files: 0, bytes: 0 };
  /** Files a failed attempt under another name had finished, copied from its folder (Manifest.resumedFrom). */
  private readonly takenOver = { files: 0, bytes: 0 };
  /** Counts the bytes of every upload: one function for all of them (uploadFile calls it per chunk). */
  private readonly countUploaded = (n: number): void => {
    this.progress.bytesDone += n;
    this.progress.bytesUploaded += n;
  };

  constructor(
    private readonly req: BackupRequest,
    private readonly started: number,
    /** This run's id in the in-progress marker (checkStillOurs). */
    private readonly run: string,
    /**
     * What the journal of an interrupted earlier run names: of this name (its files stay in place)
     * or of another (BackupRequest.resumeFrom: they are copied from there).
     */
    private readonly resume: { from: string; journaled: Journaled },
    /** Where this run writes down what it finished, for a later run to take over after a failure. */
    private readonly journal: JournalWriter,
  ) {
    this.store = req.store;
    this.name = req.name;
    this.concurrency = req.concurrency ?? 4;
    this.limiter = req.maxBytesPerSecond ? new RateLimiter(req.maxBytesPerSecond) : undefined;
    this.progress = {
      phase: 'copying',
      filesDone: 0,
      filesTotal: req.trees.reduce((n, t) => n + t.files.length, 0),
      bytesDone: 0,
      bytesTotal: req.trees.reduce((n, t) => n + t.files.reduce((m, f) => m + f.size, 0), 0),
      bytesUploaded: 0,
      bytesCopied: 0,
    };
  }

  async write(): Promise<Manifest> {
    // Stopped (an interrupt), the backup stays incomplete: checked between the steps as well as
    // within the transfers, so that a stop after the last file still writes no complete marker.
    const signal = this.req.signal;
    const stopHeartbeat = this.req.onProgress ? heartbeat(() => this.report()) : undefined;
    try {
      const written: ManifestTree[] = [];
      for (const tree of this.req.trees) {
        signal?.throwIfAborted();
        written.push(await this.writeTree(tree));
      }
      signal?.throwIfAborted();
      // Every file is in and written down before the check lists the folder (whose listing the
      // journal's removal after the complete marker takes): no segment comes after it.
      await this.journal.close(true);
      this.progress.phase = 'checking';
      this.report();
      const checked = await checkObjects(this.store, this.name, written, () => checkStillOurs(this.store, this.name, this.run));
      signal?.throwIfAborted();
      const { manifest, manifestSha256 } = await this.writeManifest(withEtags(this.name, written, checked.etags));
      signal?.throwIfAborted();
      await this.writeMarkers(manifest, manifestSha256, checked.journal);
      this.progress.phase = 'done';
      this.report();
      return manifest;
    } finally {
      stopHeartbeat?.();
    }
  }

  private report(): void {
    this.req.onProgress?.({ ...this.progress });
  }

  /**
   * The objects of a folder's tree with their sizes and ETags (keyed as treeKey gives them), one
   * listing; none when there is no folder to list. Listed tree by tree, so that a backup holds one
   * tree's listing at a time: a VictoriaLogs database keeps a tree per partition, hundreds of
   * thousands of objects in all, and Velero's container has 512 MiB by default.
   */
  private async objectsOf(folder: string | undefined, tree: BackupTreeInput): Promise<Map<string, ObjectInfo>> {
    const objects = new Map<string, ObjectInfo>();
    if (folder === undefined) return objects;
    for await (const obj of this.store.list(`${folder}/${tree.prefix}`)) objects.set(obj.key, { key: obj.key, size: obj.size, ...(obj.etag !== undefined ? { etag: obj.etag } : {}) });
    return objects;
  }

  /** One tree's files into the store; their manifest entries, in the tree's order. */
  private async writeTree(tree: BackupTreeInput): Promise<ManifestTree> {
    const keyOf = (part: Part) => treeKey(this.name, tree.prefix, partKey(part));
    const baseTree = this.req.base?.manifest.trees.find((t) => t.prefix === tree.prefix);
    const previous = new Map(baseTree?.files.map((f) => [f.path, f]) ?? []);
    // The base's objects: a copy takes whatever the base holds, so an object of the base that was
    // truncated or replaced would be copied into every later backup if its size and ETag were
    // not compared with the base's manifest first. A tree the base does not have is not listed.
    const baseObjects = await this.objectsOf(baseTree && this.req.base?.name, tree);
    // What an interrupted earlier run left of the tree, listed only when its journal names files in it.
    const resumable = await this.objectsOf(this.resume.journaled.has(tree.prefix) ? this.resume.from : undefined, tree).catch((err: unknown) => {
      // Another folder that cannot be listed holds nothing to take over; this one's trouble is the backup's.
      if (this.resume.from === this.name) throw err;
      return new Map<string, ObjectInfo>();
    });
    const done = new Map<string, ManifestFile>();
    // What an interrupted run of this name finished stays; server-side copies next, from the base
    // and then from a failed attempt under another name; a copy that fails (the old object is gone,
    // or the server refuses copies) becomes an upload, and the manifest says how many did.
    const { resume } = this;
    const inPlace = resume.from === this.name;
    const rest = inPlace ? this.keepResumed(tree, resumable, done) : tree.files;
    const { toCopy, toUpload } = sortOut(rest, previous, this.req.base);
    if (this.req.base) await this.copyUnchanged(tree, keyOf, toCopy, toUpload, done, { name: this.req.base.name, objects: baseObjects });
    if (!inPlace) {
      const fromAttempt = this.finishedIn(tree, toUpload, resumable);
      await this.copyUnchanged(tree, keyOf, fromAttempt, toUpload, done, { name: resume.from, objects: resumable, attempt: true });
    }
    await this.uploadChanged(tree, keyOf, toUpload, done);
    const missing = tree.files.filter((f) => !done.has(f.path));
    if (missing.length > 0) throw new Error(`${missing.length} file(s) were not backed up, e.g. ${missing[0]!.path}`);
    return { prefix: tree.prefix, restoreTo: tree.restoreTo, files: tree.files.map((f) => done.get(f.path)!) };
  }

  /** The journal's entry for `file` when it names it unchanged and `folder`'s listing holds every one of its objects at its size; else undefined. */
  private finished(tree: BackupTreeInput, file: SnapshotFile, folder: Map<string, ObjectInfo>): ManifestFile | undefined {
    const entry = this.resume.journaled.get(tree.prefix)?.get(file.path);
    if (!unchanged(file, entry)) return undefined;
    const keyOf = (part: Part) => treeKey(this.resume.from, tree.prefix, partKey(part));
    return splitParts(file.path, file.size).every((part) => folder.get(keyOf(part))?.size === part.size) ? entry : undefined;
  }

  /**
   * The files of the tree that an interrupted earlier run of this name finished, into `done`: the
   * journal names them with the same size and mtime (and they are not of those that change in
   * place), and the folder holds every one of their objects at its size. Returns the others.
   */
  private keepResumed(tree: BackupTreeInput, inFolder: Map<string, ObjectInfo>, done: Map<string, ManifestFile>): SnapshotFile[] {
    if (!this.resume.journaled.has(tree.prefix)) return tree.files;
    const rest: SnapshotFile[] = [];
    for (const file of tree.files) {
      checkRelPath(file.path);
      const entry = this.finished(tree, file, inFolder);
      if (!entry) {
        rest.push(file);
        continue;
      }
      done.set(file.path, entry);
      this.resumed.files++;
      this.resumed.bytes += file.size;
      this.progress.filesDone++;
      this.progress.bytesDone += file.size;
      this.progress.bytesResumed = this.resumed.bytes;
    }
    return rest;
  }

  /** Takes off `toUpload` the files a failed attempt under another name finished (finished()), to be copied from its folder. */
  private finishedIn(tree: BackupTreeInput, toUpload: SnapshotFile[], folder: Map<string, ObjectInfo>): Array<[SnapshotFile, ManifestFile]> {
    if (!this.resume.journaled.has(tree.prefix)) return [];
    const taken: Array<[SnapshotFile, ManifestFile]> = [];
    const rest = toUpload.filter((file) => {
      const entry = this.finished(tree, file, folder);
      if (entry) taken.push([file, entry]);
      return !entry;
    });
    toUpload.splice(0, toUpload.length, ...rest);
    return taken;
  }

  /**
   * Server-side copies from the base backup, or from a failed attempt's folder, into `done`; a file
   * whose copy fails, or whose objects in the base are missing, of another size or of another ETag
   * than its manifest says, goes onto `toUpload`.
   */
  private async copyUnchanged(
    tree: BackupTreeInput,
    keyOf: (part: Part) => string,
    toCopy: Array<[SnapshotFile, ManifestFile]>,
    toUpload: SnapshotFile[],
    done: Map<string, ManifestFile>,
    source: { name: string; objects: Map<string, ObjectInfo>; attempt?: boolean },
  ): Promise<void> {
    const { store, progress, refused } = this;
    if (toCopy.length === 0) return;
    // A re-run into the name of the newest complete backup finds unchanged files in place.
    const inPlace = source.name === this.name;
    progress.phase = 'copying';
    // Copies that failed for the store's trouble since the last one that worked.
    let troubleRun = 0;
    // A copy is one small request whose work is the server's: more of them at once than uploads.
    await forEachLimit(toCopy, this.concurrency * 4, async ([file, prev], failed) => {
      // An item taken while another failed is not started.
      failed.throwIfAborted();
      this.req.signal?.throwIfAborted();
      try {
        const parts = splitParts(file.path, file.size);
        const from = (part: Part) => treeKey(source.name, tree.prefix, partKey(part));
        // A failed attempt's journal records no ETags: its copies are pinned to the ones listed.
        const etags = source.attempt ? parts.map((part) => source.objects.get(from(part))?.etag) : recordedEtags(prev, parts);
        for (const [i, part] of parts.entries()) checkBaseObject(store, from(part), part.size, etags[i], source.objects);
        // In place, there is nothing to copy: the check above found every part with its size.
        if (!inPlace) {
          // Pinned to the recorded ETag: a replacement between the listing and the copy is refused too.
          for (const [i, part] of parts.entries()) await store.copy(from(part), keyOf(part), part.size, etags[i]);
        }
      } catch (err) {
        const failure = copyFailure(err);
        if (failure === 'fatal') throw err;
        // Each such copy took all its retries: with no copy working, trying every file and then
        // uploading them all would hold the backup for hours against a store that is down.
        if (failure === 'trouble' && ++troubleRun >= COPY_TROUBLE_LIMIT) throw err;
        // A failed attempt's folder vouches for nothing (no manifest): a copy it cannot give is
        // simply uploaded, while a base that fails its manifest is worth a warning.
        if (!source.attempt) {
          refused.count++;
          refused.first ??= err instanceof Error ? err.message : String(err);
        }
        toUpload.push(file);
        return;
      }
      troubleRun = 0;
      const entry: ManifestFile = { path: file.path, size: file.size, mtimeMs: file.mtimeMs, sha256: prev.sha256, origin: 'copied' };
      done.set(file.path, entry);
      this.journal.add(tree.prefix, entry);
      if (source.attempt) {
        this.takenOver.files++;
        this.takenOver.bytes += file.size;
      }
      progress.filesDone++;
      progress.bytesDone += file.size;
      progress.bytesCopied += file.size;
      this.report();
    });
  }

  /** Uploads the files read by the tree's reader into `done`, largest first. */
  private async uploadChanged(tree: BackupTreeInput, keyOf: (part: Part) => string, toUpload: SnapshotFile[], done: Map<string, ManifestFile>): Promise<void> {
    const { store, progress } = this;
    progress.phase = 'uploading';
    // Largest first: a big file started last would upload alone at the end while the rest idles.
    toUpload.sort((a, b) => b.size - a.size);
    const byPath = new Map(toUpload.map((f) => [f.path, f]));
    // Large files hold part buffers: at most `concurrency` of them at once. Small ones fill the
    // gaps (no deadlock with a sequential reader: a worker waiting here holds the newest entry, and
    // the large files ahead of it need nothing from the reader to finish).
    const large = new Semaphore(this.concurrency);
    await forEachLimit(tree.reader.read(toUpload), this.concurrency * 2, async (entry, failed) => {
      // An entry left unread would hold up a sequential reader (a tar stream) and its other workers.
      const refuse = (err: Error): never => {
        entry.stream.destroy(err);
        throw err;
      };
      // An entry that arrives after another file failed, or after an interrupt, is not started.
      const stop = this.req.signal ? AbortSignal.any([failed, this.req.signal]) : failed;
      if (stop.aborted) refuse(stop.reason as Error);
      const file = byPath.get(entry.file.path);
      if (!file) return refuse(new Error(`the file reader returned ${entry.file.path}, which was not requested`));
      const isLarge = file.size > SMALL_FILE;
      if (isLarge) await large.acquire();
      let sha256: string;
      try {
        // The wait for a large file's turn may outlast another file's failure.
        if (stop.aborted) refuse(stop.reason as Error);
        sha256 = await uploadFile(store, keyOf, entry, this.limiter, this.countUploaded, stop);
      } finally {
        if (isLarge) large.release();
      }
      const uploaded: ManifestFile = { path: file.path, size: file.size, mtimeMs: file.mtimeMs, sha256, origin: 'uploaded' };
      done.set(file.path, uploaded);
      this.journal.add(tree.prefix, uploaded);
      progress.filesDone++;
      this.report();
    });
  }

  /** The manifest, once the counts are in, written; with the SHA-256 of its bytes, which the complete marker names. */
  private async writeManifest(trees: ManifestTree[]): Promise<{ manifest: Manifest; manifestSha256: string }> {
    const { req, name } = this;
    this.progress.phase = 'counting';
    this.report();
    const counted = await settledCounts(req.counted);
    const completedAt = new Date();
    const files = trees.flatMap((t) => t.files);
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      name,
      kind: req.kind,
      source: req.source,
      ...counted,
      createdAt: req.createdAt.toISOString(),
      completedAt: completedAt.toISOString(),
      ...(req.base ? { basedOn: req.base.name } : {}),
      ...(this.refused.first !== undefined ? { copiesRefused: { count: this.refused.count, first: this.refused.first } } : {}),
      ...(this.resumed.files > 0 ? { resumed: { ...this.resumed } } : {}),
      ...(this.takenOver.files > 0 ? { resumedFrom: { backup: this.resume.from, ...this.takenOver } } : {}),
      totals: {
        files: files.length,
        bytes: files.reduce((n, f) => n + f.size, 0),
        bytesUploaded: this.progress.bytesUploaded,
        bytesCopied: this.progress.bytesCopied,
      },
      durationSeconds: (completedAt.getTime() - this.started) / 1000,
      trees,
    };
    const { chunks, size, sha256 } = serializeManifest(manifest);
    // The counts may have taken minutes: another run of this name may have started meanwhile.
    await checkStillOurs(this.store, name, this.run);
    await this.store.put(`${name}/${MANIFEST_KEY}`, chunks.length === 1 ? chunks[0]! : Readable.from(chunks), size);
    return { manifest, manifestSha256: sha256 };
  }

  /**
   * vmbackup's markers per tree, then our complete marker: last, so that the backup is complete
   * only when all else is written. Then the in-progress marker and the journal go.
   */
  private async writeMarkers(manifest: Manifest, manifestSha256: string, journal: string[]): Promise<void> {
    const { store, name } = this;
    // vmbackup's own markers, per tree, so that stock vmrestore (and vmbackup -origin) accept each tree.
    const created = `${manifest.createdAt.slice(0, 19)}Z`;
    for (const tree of manifest.trees) {
      const meta = Buffer.from(JSON.stringify({ created_at: created, completed_at: `${manifest.completedAt.slice(0, 19)}Z` }));
      await store.put(treeKey(name, tree.prefix, VM_METADATA_MARKER), meta, meta.length);
      await store.put(treeKey(name, tree.prefix, VM_COMPLETE_MARKER), Buffer.alloc(0), 0);
    }
    const marker: CompleteMarker = {
      format: MANIFEST_FORMAT,
      manifestSha256,
      completedAt: manifest.completedAt,
    };
    const markerBytes = Buffer.from(JSON.stringify(marker));
    await checkStillOurs(store, name, this.run);
    await store.put(`${name}/${COMPLETE_KEY}`, markerBytes, markerBytes.length);
    // Complete: the folder is ours by its manifest now. Left behind, the marker and the journal
    // would be harmless (a re-run removes them; vmrestore and our restore skip them).
    await store.delete([`${name}/${IN_PROGRESS_KEY}`, ...journal]).catch(() => undefined);
  }
}
