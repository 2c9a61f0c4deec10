/**
 * Counts as flat numbers, the form the manifest, the companion's record and `companion verify
 * --expect` share: series/samples, or rows and rows per partition day (`rows.YYYYMMDD`).
 */
import type { Counts, Snapshot, SnapshotSource } from './types.js';

export function flattenCounts(counts: Counts): Record<string, number> {
  if (counts.kind === 'metrics') return { series: counts.series, samples: counts.samples };
  const out: Record<string, number> = { rows: counts.rows };
  for (const [day, rows] of Object.entries(counts.partitions)) out[`rows.${day}`] = rows;
  return out;
}

/** Whether `key` is one of the keys flattenCounts gives for `kind`. */
export function isCountKey(kind: Counts['kind'], key: string): boolean {
  return kind === 'metrics' ? key === 'series' || key === 'samples' : /^rows(\.\d{8})?$/.test(key);
}

/**
 * How long before the snapshot the count stops. The count runs on the live server after the
 * snapshot; data stamped shortly before the snapshot often arrives after it (vmagent's remote-write
 * batches and queues, log shippers' batches), is counted but is not in the snapshot, and a drill of
 * the backup would then report a mismatch. Five minutes covers ordinary delivery delays; data
 * delayed longer (a queue drained after an outage, backfill) can still make the counts differ.
 */
export const LATE_DATA_MARGIN_MS = 5 * 60_000;

/**
 * The count a backup records: data before `countedBefore` (the snapshot time less
 * LATE_DATA_MARGIN_MS) and from where the server's retention lets a restored copy count the same
 * range (SnapshotSource.countStart, `countedFrom`), flattened. VictoriaLogs: only the days of
 * `snapshots`' partitions, as late data stamped on a day without a partition at snapshot time
 * makes a new partition after it, which the backup does not hold.
 */
export async function countForBackup(
  source: SnapshotSource,
  snapshotTime: Date,
  snapshots: readonly Snapshot[],
  timeoutMs?: number,
  signal?: AbortSignal,
): Promise<{ counts: Record<string, number>; countedFrom?: string; countedBefore: string }> {
  const end = new Date(snapshotTime.getTime() - LATE_DATA_MARGIN_MS);
  const start = await source.countStart(signal);
  if (start && start >= end) {
    throw new Error(
      `the count would end at ${end.toISOString()} (five minutes before the snapshot of ${snapshotTime.toISOString()}), before what the server keeps counting from (${start.toISOString()}, an hour inside its retention): take a new snapshot`,
    );
  }
  const counts = flattenCounts(onlySnapshotted(await source.counts({ end, ...(start ? { start } : {}), ...(timeoutMs ? { timeoutMs } : {}), ...(signal ? { signal } : {}) }), snapshots));
  return { counts, ...(start ? { countedFrom: start.toISOString() } : {}), countedBefore: end.toISOString() };
}

/** VictoriaLogs counts without the days that have no snapshot (their rows taken off the total too). */
function onlySnapshotted(counts: Counts, snapshots: readonly Snapshot[]): Counts {
  if (counts.kind !== 'logs') return counts;
  const days = new Set(snapshots.map((s) => s.partition));
  const partitions = Object.fromEntries(Object.entries(counts.partitions).filter(([day]) => days.has(day)));
  const dropped = Object.entries(counts.partitions).reduce((sum, [day, rows]) => (days.has(day) ? sum : sum + rows), 0);
  return { ...counts, rows: counts.rows - dropped, partitions };
}
