/**
 * The Velero hooks (docs/velero-backup.md, "How a backup flows"): `hook pre` snapshots the database
 * and records the set, `hook post` deletes exactly what was recorded. The pre hook does not count:
 * counting reads every sample (seconds of the database's CPU per GiB), so the plugin runs
 * `companion counts` while the files upload, and the hook stays well inside Velero's hook timeout.
 * Velero runs them with exec in the companion container and logs their output; each prints one JSON
 * line, which the plugin also parses when it runs the hooks itself.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SnapshotUndeletableError, VictoriaUnreachableError } from '../victoria/errors.js';
import { countsEnd } from '../victoria/snapshot-names.js';
import type { Snapshot, SnapshotSource } from '../victoria/types.js';
import type { CompanionConfig } from './config.js';
import { openConfiguredSource } from './config.js';
import { CompanionError, usageError } from './errors.js';
import { recordOfThisServer, removeRecord, STATE_FORMAT, writeRecord, type RecordedSet } from './state.js';
import { withStateLock } from './state-lock.js';

export interface PreHookResult {
  hook: 'pre';
  kind: CompanionConfig['kind'];
  /** Names of the snapshots made and recorded. */
  snapshots: string[];
  /** Names of snapshots of an earlier, unfinished run that were deleted first. */
  staleRemoved: string[];
  durationSeconds: number;
  /**
   * Set when an earlier run's snapshots cannot be deleted (VictoriaLogs v1.31–v1.43, or a
   * partition detached meanwhile): what stays on disk.
   */
  warning?: string;
}

export interface PostHookResult {
  hook: 'post';
  /** Names of the recorded snapshots, now gone ([] when nothing was recorded). */
  deleted: string[];
  /**
   * Set when the recorded snapshots cannot be deleted (VictoriaLogs v1.31–v1.43, or a partition
   * detached meanwhile): what stays on disk.
   */
  warning?: string;
}

/**
 * Runs a deletion of recorded snapshots. A server that has no API to delete them (VictoriaLogs
 * v1.31–v1.43) would refuse on every later try too: then they are left, and the warning says where,
 * instead of failing this hook and, through the record kept for a retry, every later pre hook.
 */
export async function unlessUndeletable<T>(deletion: () => Promise<T>): Promise<{ done: T } | { warning: string }> {
  try {
    return { done: await deletion() };
  } catch (err) {
    if (err instanceof SnapshotUndeletableError) return { warning: err.message };
    throw err;
  }
}

/**
 * Deletes the snapshots of an unfinished earlier run (recorded, so ours; anything else on the
 * server is left alone), then snapshots and records. VictoriaLogs without data has no
 * partition to snapshot: that records an empty set, so a backup of a fresh database succeeds.
 */
export async function preHook(config: CompanionConfig, source: SnapshotSource = openConfiguredSource(config)): Promise<PreHookResult> {
  return withStateLock(config.stateDir, 'hook pre', LOCK_WAIT_MS.pre, () => snapshotAndRecord(config, source));
}

/**
 * How long a hook waits for another companion command's lock: well inside the hook timeouts of
 * velero/components and schedules/ (pre 5m, post 2m), so that the hook fails with our message, not Velero's.
 */
const LOCK_WAIT_MS = { pre: 60_000, post: 20_000 };

async function snapshotAndRecord(config: CompanionConfig, source: SnapshotSource): Promise<PreHookResult> {
  const started = performance.now();
  let staleRemoved: string[] = [];
  let warning: string | undefined;
  const earlier = await recordOfThisServer(config.stateDir, source.kind, source.url);
  if (earlier) {
    const stale = await unlessUndeletable(() => source.deleteStale(earlier.snapshots));
    if ('done' in stale) staleRemoved = stale.done.map((s) => s.name);
    else warning = stale.warning;
    await removeRecord(config.stateDir);
  }

  const requested = new Date();
  let snapshots: Snapshot[];
  try {
    snapshots = await source.create();
  } catch (err) {
    throw await namingPossibleLeftovers(err, source, requested);
  }
  try {
    // A data directory that is not the database's shows here, not at the backup's first read.
    for (const s of snapshots) {
      const dir = join(config.dataDir, s.dir);
      if (!(await stat(dir).then((st) => st.isDirectory(), () => false))) {
        throw usageError(
          `snapshot ${s.name} was made but is not at ${dir}: --data-dir / VICTORIA_DATA_DIR (${config.dataDir}) is not where the database's data volume ` +
            '(its -storageDataPath) is mounted in this container',
        );
      }
    }
    const createdAt = countsEnd(snapshots, requested);
    const version = await source.version().catch(() => undefined);
    const record: RecordedSet = {
      format: STATE_FORMAT,
      kind: source.kind,
      url: source.url,
      createdAt: createdAt.toISOString(),
      snapshots,
      ...(version ? { version } : {}),
    };
    await writeRecord(config.stateDir, record);
  } catch (err) {
    // Unrecorded snapshots would never be deleted by anyone: remove them before failing.
    const cleanup = await source.delete(snapshots).then(
      () => undefined,
      (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
    );
    if (!cleanup) throw err;
    const names = snapshots.map((s) => s.name).join(', ');
    throw new CompanionError(`${(err as Error).message}; deleting the snapshots just made failed too (${cleanup.message}): delete ${names} through the server's API`);
  }
  return {
    hook: 'pre',
    kind: source.kind,
    snapshots: snapshots.map((s) => s.name),
    staleRemoved,
    durationSeconds: Math.round(performance.now() - started) / 1000,
    ...(warning ? { warning } : {}),
  };
}

/**
 * A create whose answer never came (a timeout, a cut connection) may have made snapshots all the
 * same, which no record names and so no hook deletes (VictoriaMetrics deletes one whose client went
 * away only since v1.134, VictoriaLogs not at all). Those made since the request are named, not
 * deleted: one made in that second may be someone else's.
 */
async function namingPossibleLeftovers(err: unknown, source: SnapshotSource, requested: Date): Promise<unknown> {
  if (!(err instanceof VictoriaUnreachableError)) return err;
  // Names carry whole seconds.
  const since = Math.floor(requested.getTime() / 1000) * 1000;
  const made = await source.list().then(
    (all) => all.filter((s) => s.createdAt.getTime() >= since),
    () => [],
  );
  if (made.length === 0) return err;
  return new CompanionError(
    `${err.message}; the server may have made the snapshots all the same: ${made.map((s) => s.name).join(', ')} appeared since the request, recorded nowhere, ` +
      'so no hook will delete them: unless someone else made them, delete them through the server\'s snapshot API (docs/companion.md)',
  );
}

/**
 * Deletes the recorded snapshots (ones already gone are fine, so it can run twice) and then the
 * record. If a deletion fails the record stays, so `hook pre` or `serve` retries it later.
 */
export async function postHook(config: CompanionConfig, source: SnapshotSource = openConfiguredSource(config)): Promise<PostHookResult> {
  return withStateLock(config.stateDir, 'hook post', LOCK_WAIT_MS.post, async () => {
    const record = await recordOfThisServer(config.stateDir, source.kind, source.url);
    if (!record) return { hook: 'post', deleted: [] };
    const deleted = await unlessUndeletable(() => source.delete(record.snapshots));
    await removeRecord(config.stateDir);
    return 'done' in deleted ? { hook: 'post', deleted: record.snapshots.map((s) => s.name) } : { hook: 'post', deleted: [], warning: deleted.warning };
  });
}
