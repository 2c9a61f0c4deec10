/**
 * A backup of a database on this machine: snapshot through its API, read the snapshot files from
 * its data directory, write them with the engine, delete the snapshots (also on failure, and on
 * SIGINT/SIGTERM before the process exits).
 */
import { join } from 'node:path';
import { pendingCounts, writeBackup } from '../engine/backup.js';
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
}

export async function backupFromSnapshots(req: SnapshotBackupRequest): Promise<Manifest> {
  const { source } = req;
  // The base is looked up while the database makes its snapshot: neither needs the other.
  const baseLookup = req.incremental === false ? Promise.resolve(undefined) : newestComplete(req.store, '', (m) => m.kind === source.kind);
  // Observed now: it may fail while the snapshot is still being made; its error is thrown below.
  baseLookup.catch(() => undefined);
  // Interrupted, the process deletes its snapshots before it exits: no one else would.
  const creating = source.create();
  const release = onInterrupt(async (signal) => {
    const made = await creating.catch(() => []);
    process.stderr.write(`${signal}: stopping; deleting snapshot(s) ${made.map((s) => s.name).join(', ') || '(none made)'}; ${req.store.location}/${req.name} stays incomplete\n`);
    await source.delete(made);
  });
  let snapshots: Snapshot[];
  try {
    snapshots = await creating;
  } catch (err) {
    release();
    throw err;
  }
  try {
    const base = await baseLookup;
    if (snapshots.length === 0) throw new Error(`${source.url} returned no snapshot: there is no data to back up yet`);
    // Counted while the files upload, not before: the query reads every sample (seconds of the
    // server's CPU per GiB) and the upload does not need its answer until the manifest.
    const counted = req.counts === false ? { counts: {} } : pendingCounts(countForBackup(source, countsEnd(snapshots, new Date())));
    const trees = await Promise.all(
      snapshots.map(async (s) => {
        const dir = join(req.dataDir, s.dir);
        let files;
        try {
          files = await listSnapshotFiles(dir, req.dataDir);
        } catch (err) {
          throw new Error(
            `cannot read snapshot ${s.name} at ${dir} (${(err as Error).message}): --data-dir must be the database's -storageDataPath on this machine`,
          );
        }
        return { prefix: s.relPathPrefix, restoreTo: s.relPathPrefix.replace(/\/$/, ''), files, reader: localFileReader(dir) };
      }),
    );
    const version = await source.version().catch(() => undefined);
    return await writeBackup({
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
    });
  } finally {
    await source.delete(snapshots);
    release();
  }
}
