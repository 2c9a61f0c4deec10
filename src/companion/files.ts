/**
 * `companion files`: the recorded snapshot set and every file in it, as one JSON document
 * (protocol.ts CompanionFiles). Files are listed exactly as the CLI's backup lists them
 * (listSnapshotFiles: through VictoriaMetrics' symlinks), so both produce the same backups.
 */
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { listSnapshotFiles } from '../engine/files.js';
import type { Snapshot } from '../victoria/types.js';
import type { CompanionConfig } from './config.js';
import { CompanionError } from './errors.js';
import { COMPANION_FILES_FORMAT, type CompanionFiles, type CompanionTree } from './protocol.js';
import { requireRecord } from './state.js';

export async function filesDocument(config: CompanionConfig): Promise<CompanionFiles> {
  const record = await requireRecord(config.stateDir, config.kind);
  const trees: CompanionTree[] = [];
  const dropped: string[] = [];
  // One snapshot at a time: listing is stat-bound, and the sidecar should stay light on the node.
  for (const s of record.snapshots) {
    if (await droppedWithPartition(config, s)) dropped.push(s.name);
    else trees.push({ prefix: s.relPathPrefix, restoreTo: s.relPathPrefix.replace(/\/$/, ''), files: await listTree(config, s), snapshot: s.name });
  }
  return {
    format: COMPANION_FILES_FORMAT,
    kind: record.kind,
    url: record.url,
    ...(record.version ? { version: record.version } : {}),
    createdAt: record.createdAt,
    snapshots: record.snapshots.map((s) => s.name),
    trees,
    ...(dropped.length ? { droppedByRetention: dropped } : {}),
    dataDir: config.dataDir,
  };
}

/**
 * A VictoriaLogs partition snapshot that went with its partition: retention drops the oldest day
 * every day, snapshots and all, and a backup may run across that moment. Its data is gone from the
 * database too, so the backup goes on without it (as `hook post` counts it as deleted).
 */
async function droppedWithPartition(config: CompanionConfig, s: Snapshot): Promise<boolean> {
  if (config.kind !== 'logs' || !s.partition) return false;
  const gone = (path: string) => lstat(path).then(() => false, (err: NodeJS.ErrnoException) => err.code === 'ENOENT');
  return (await gone(snapshotRoot(config, s))) && (await gone(join(config.dataDir, 'partitions', s.partition)));
}

/** The directory holding a snapshot's files in this container. */
export const snapshotRoot = (config: CompanionConfig, s: Snapshot): string => join(config.dataDir, s.dir);

/** A recorded snapshot whose directory is missing: exit 1, saying both ways it can happen. */
export function snapshotMissing(s: Snapshot, dir: string): CompanionError {
  return new CompanionError(
    `snapshot ${s.name} is not at ${dir}: either it was deleted (hook post ran, or serve expired it), ` +
      `or --data-dir / VICTORIA_DATA_DIR is not where the database's data volume is mounted in this container`,
  );
}

async function listTree(config: CompanionConfig, s: Snapshot) {
  const dir = snapshotRoot(config, s);
  try {
    return await listSnapshotFiles(dir, config.dataDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw snapshotMissing(s, dir);
    throw new CompanionError(`cannot list snapshot ${s.name} at ${dir}: ${(err as Error).message}`);
  }
}
