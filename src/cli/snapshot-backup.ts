/**
 * A backup of a database on this machine: snapshot through its API, read the snapshot files from
 * its data directory, write them with the engine, delete the snapshots (also on failure, and on
 * SIGINT/SIGTERM before the process exits). A snapshot that cannot be deleted does not change the
 * backup's outcome: a complete backup stays complete (with a warning), a failed one keeps its own
 * error (with the cleanup's appended).
 */
import { join } from 'node:path';
import { leftIncomplete, pendingCounts, writeBackup, type BaseBackup } from '../engine/backup.js';
import { newestComplete } from '../engine/catalog.js';
import { listSnapshotFiles, localFileReader } from '../engine/files.js';
import type { Manifest } from '../engine/manifest.js';
import type { ProgressListener } from '../engine/progress.js';
import type { ObjectStore } from '../store/types.js';
import { countsEnd } from '../victoria/snapshot-names.js';
import { countForBackup } from '../victoria/flat-counts.js';
import type { Snapshot, SnapshotSource } from '../victoria/types.js';
import { onInterrupt } from './interrupt.js';

export interface SnapshotBackupRequest {
  source: SnapshotSource;
  dataDir: string;
  store: ObjectStore;
  name: string;
  /** Copy unchanged files from the newest complete backup of the same kind (default true). */
  incremental?: boolean;
  /** Count the data for the manifest (default true); false records no counts. */
  counts?: boolean;
  /** The most bytes per second the uploads send (absent: no limit). */
  maxBytesPerSecond?: number;
  onProgress?: ProgressListener;
  /**
   * Told, after the clean-up, that a signal stopped the backup: the process then exits from the
   * signal's handler, and nothing is returned (`complete`: it had completed before the signal).
   */
  onStopped?: (outcome: { complete: boolean; message: string }) => void;
}

export interface SnapshotBackupResult {
  manifest: Manifest;
  /** Why the snapshots could not be deleted after the backup completed (they stay on disk). */
  cleanupError?: string;
}

export async function backupFromSnapshots(req: SnapshotBackupRequest): Promise<SnapshotBackupResult> {
  const { source } = req;
  // The base is looked up while the database makes its snapshot: neither needs the other.
  const baseLookup =
    req.incremental === false
      ? Promise.resolve(undefined)
      : newestComplete(req.store, '', {
          accept: (m) => m.kind === source.kind,
          onUnreadable: (name, why) => process.stderr.write(`warning: ${req.store.location}/${name} cannot be read (${why}): it is passed over as the base of this backup\n`),
        });
  // Observed now: it may fail while the snapshot is still being made; its error is thrown below.
  baseLookup.catch(() => undefined);
  // A signal or a failure stops what still runs: the uploads at their next chunk, the count's query.
  const stop = new AbortController();
  const creating = source.create();
  // Interrupted, the process deletes its snapshots and aborts its multipart uploads before it exits:
  // no one else would. The handler stops the engine and waits for the clean-up below, once the
  // engine has stopped, so that no upload starts after the aborts.
  let interrupted: NodeJS.Signals | undefined;
  let cleanedUp!: () => void;
  const cleanup = new Promise<void>((resolve) => (cleanedUp = resolve));
  const release = onInterrupt(async (signal) => {
    interrupted = signal;
    stop.abort(new Error(`stopped by ${signal}`));
    await cleanup;
  });
  let snapshots: Snapshot[] = [];
  let manifest: Manifest | undefined;
  let failure: { error: unknown } | undefined;
  try {
    snapshots = await creating;
    manifest = await writeSnapshots(req, snapshots, await baseLookup, stop.signal);
  } catch (error) {
    failure = { error };
    stop.abort(error);
  }
  const cleanupError = await deleteSnapshots(source, snapshots);
  // A folder the engine had begun to write stays, with a journal of the files it finished.
  const resume = failure && leftIncomplete(failure.error) ? `: a backup with --name ${req.name} into the same --dst resumes it` : '';
  if (interrupted) {
    const made = snapshots.map((s) => s.name).join(', ') || '(none made)';
    const outcome = manifest ? 'completed before the signal took effect' : `stays incomplete${resume}`;
    process.stderr.write(`${interrupted}: stopping; deleting snapshot(s) ${made}; ${req.store.location}/${req.name} ${outcome}\n`);
    if (cleanupError) process.stderr.write(`${interrupted}: ${cleanupError}\n`);
    const aborted = await req.store.abortOpenUploads?.();
    if (aborted) process.stderr.write(`${interrupted}: aborted ${aborted} multipart upload(s) under way\n`);
    req.onStopped?.({
      complete: manifest !== undefined,
      message: `stopped by ${interrupted}: ${req.store.location}/${req.name} ${outcome}${cleanupError ? `; ${cleanupError}` : ''}`,
    });
    cleanedUp();
    // The handler exits as the signal would have (interrupt.ts); nothing is returned meanwhile.
    return new Promise<never>(() => undefined);
  }
  release();
  cleanedUp();
  if (failure) {
    const err = failure.error;
    if (!cleanupError && !resume) throw err;
    const left = resume ? `; ${req.store.location}/${req.name} stays incomplete${resume}` : '';
    throw new Error(`${(err as Error).message}${cleanupError ? `; ${cleanupError}` : ''}${left}`, { cause: err });
  }
  return { manifest: manifest!, ...(cleanupError ? { cleanupError } : {}) };
}

/** The snapshots' files into the store: the engine's backup, counted while the files upload. */
async function writeSnapshots(req: SnapshotBackupRequest, snapshots: Snapshot[], base: BaseBackup | undefined, signal: AbortSignal): Promise<Manifest> {
  const { source } = req;
  signal.throwIfAborted();
  if (snapshots.length === 0) throw new Error(`${source.url} returned no snapshot: there is no data to back up yet`);
  // Counted while the files upload, not before: the query reads every sample (seconds of the
  // server's CPU per GiB) and the upload does not need its answer until the manifest.
  const counted = req.counts === false ? { counts: {} } : pendingCounts(countForBackup(source, countsEnd(snapshots, new Date()), snapshots, undefined, signal));
  const trees = await Promise.all(
    snapshots.map(async (s) => {
      const dir = join(req.dataDir, s.dir);
      let files;
      try {
        files = await listSnapshotFiles(dir, req.dataDir);
      } catch (err) {
        throw new Error(`cannot read snapshot ${s.name} at ${dir} (${(err as Error).message}): --data-dir must be the database's -storageDataPath on this machine`);
      }
      return { prefix: s.relPathPrefix, restoreTo: s.relPathPrefix.replace(/\/$/, ''), files, reader: localFileReader(dir, req.dataDir) };
    }),
  );
  const version = await source.version().catch(() => undefined);
  return writeBackup({
    store: req.store,
    name: req.name,
    kind: source.kind,
    trees,
    source: { url: source.url, ...(version ? { version } : {}), snapshots: snapshots.map((s) => s.name) },
    counted,
    createdAt: snapshots[0]!.createdAt,
    ...(base ? { base } : {}),
    ...(req.maxBytesPerSecond ? { maxBytesPerSecond: req.maxBytesPerSecond } : {}),
    ...(req.onProgress ? { onProgress: req.onProgress } : {}),
    signal,
  });
}

/** Deletes the snapshots; says why not when that fails (undefined when they are gone). */
async function deleteSnapshots(source: SnapshotSource, snapshots: Snapshot[]): Promise<string | undefined> {
  return source.delete(snapshots).then(
    () => undefined,
    (err: unknown) => `deleting the snapshot(s) ${snapshots.map((s) => s.name).join(', ')} failed (${err instanceof Error ? err.message : String(err)})`,
  );
}
