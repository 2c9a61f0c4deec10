/**
 * `companion serve`: the sidecar's main process. The hooks and the plugin reach the companion with
 * exec, so the main process has nothing to serve; it idles (one timer, no listener) and exits 0 on
 * SIGTERM/SIGINT, so pod shutdown is never delayed.
 *
 * Its one job: a snapshot set whose `hook post` never ran (a backup that crashed, a Velero that
 * was killed) pins disk space until someone deletes it. Every few minutes, and once at start, a
 * recorded set older than --max-snapshot-age, and not read by a backup for as long, is deleted
 * and the record cleared. Only recorded snapshots are ever touched.
 */
import { stat } from 'node:fs/promises';
import { Agent } from 'undici';
import type { SnapshotSource } from '../victoria/types.js';
import { describeConfig, formatDuration, openConfiguredSource, type CompanionConfig } from './config.js';
import { lastUse, recordOfThisServer, removeRecord } from './state.js';
import { acquireStateLock } from './state-lock.js';
import { unlessUndeletable } from './hooks.js';

/** How often the record is checked, at most: cheap (one small file read), and age limits are hours. */
const EXPIRY_CHECK_INTERVAL_MS = 5 * 60_000;

export interface ServeOptions {
  /** Aborted on SIGTERM/SIGINT. */
  signal: AbortSignal;
  /** Writes one log line. */
  log: (line: string) => void;
}

export async function serve(config: CompanionConfig, options: ServeOptions): Promise<void> {
  const { signal, log } = options;
  if (signal.aborted) return;
  // An agent of our own, destroyed on shutdown: an in-flight deletion must not hold the exit up
  // (it is retried at the next start, the record being still there).
  const agent = new Agent();
  const source = openConfiguredSource(config, agent);
  const intervalMs = Math.min(EXPIRY_CHECK_INTERVAL_MS, Math.max(1000, config.maxSnapshotAgeMs));
  log(`companion serving: ${describeConfig(config)} max-snapshot-age=${formatDuration(config.maxSnapshotAgeMs)}`);
  // The data volume is mounted there before any container starts: missing, the mount path is
  // wrong, which otherwise shows only when the first backup fails.
  const dataDir = await stat(config.dataDir).catch((err: NodeJS.ErrnoException) => err.code ?? 'unreadable');
  if (typeof dataDir === 'string' || !dataDir.isDirectory()) {
    const what = typeof dataDir !== 'string' ? 'is not a directory' : dataDir === 'ENOENT' ? 'does not exist' : `cannot be read (${dataDir})`;
    log(`warning: data directory ${config.dataDir} ${what}: mount the database's data volume there (read-only), or fix --data-dir / VICTORIA_DATA_DIR; backups of this pod fail until then`);
  }

  // One check at a time: while a slow server answers, later ticks are skipped, not queued.
  let busy = false;
  const check = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      await expireRecorded(config, source, new Date(), log);
    } catch (err) {
      if (!signal.aborted) log(`error: expiring recorded snapshots failed, retrying in ${formatDuration(intervalMs)}: ${(err as Error).message}`);
    } finally {
      busy = false;
    }
  };
  void check();
  const timer = setInterval(() => void check(), intervalMs);
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  clearInterval(timer);
  await agent.destroy();
  log('companion stopping');
}

/**
 * Deletes the recorded set if it is older than the limit, then clears the record. Holding the
 * state lock throughout, so no `hook pre` records a new set meanwhile. Returns the names deleted.
 */
export async function expireRecorded(config: CompanionConfig, source: SnapshotSource, now: Date, log: (line: string) => void): Promise<string[]> {
  // A hook at work on the record: look again at the next tick.
  const release = await acquireStateLock(config.stateDir, 'serve', 0);
  if (!release) return [];
  try {
    return await expireUnlocked(config, source, now, log);
  } finally {
    await release();
  }
}

async function expireUnlocked(config: CompanionConfig, source: SnapshotSource, now: Date, log: (line: string) => void): Promise<string[]> {
  const record = await recordOfThisServer(config.stateDir, source.kind, source.url);
  if (!record) return [];
  const created = Date.parse(record.createdAt);
  const used = (await lastUse(config.stateDir))?.getTime() ?? 0;
  const ageMs = now.getTime() - Math.max(created, used);
  if (ageMs < config.maxSnapshotAgeMs) return [];
  const deleted = await unlessUndeletable(() => source.delete(record.snapshots));
  await removeRecord(config.stateDir);
  const names = record.snapshots.map((s) => s.name);
  if ('warning' in deleted) {
    log(`recorded snapshot(s) from ${record.createdAt} are left, and no longer tracked: ${deleted.warning}`);
    return [];
  }
  log(
    `deleted ${names.length} recorded snapshot(s) from ${record.createdAt} (${used > created ? 'unused for' : 'age'} ${formatDuration(ageMs)} > max-snapshot-age ` +
      `${formatDuration(config.maxSnapshotAgeMs)}: the backup's post hook never ran): ${names.join(', ') || 'none'}`,
  );
  return names;
}
