/**
 * Counts as flat numbers, the form the manifest, the companion's record and `companion verify
 * --expect` share: series/samples, or rows and rows per partition day (`rows.YYYYMMDD`).
 */
import type { Counts, SnapshotSource } from './types.js';

export function flattenCounts(counts: Counts): Record<string, number> {
  if (counts.kind === 'metrics') return { series: counts.series, samples: counts.samples };
  const out: Record<string, number> = { rows: counts.rows };
  for (const [day, rows] of Object.entries(counts.partitions)) out[`rows.${day}`] = rows;
  return out;
}

/**
 * The count a backup records: data before `end` (the snapshot time) and from where the server's
 * retention lets a restored copy count the same range (SnapshotSource.countStart), flattened.
 */
export async function countForBackup(source: SnapshotSource, end: Date): Promise<{ counts: Record<string, number>; countedFrom?: string }> {
  const start = await source.countStart();
  if (start && start >= end) {
    throw new Error(
      `the snapshot (${end.toISOString()}) is older than what the server keeps counting from (${start.toISOString()}, an hour inside its retention): take a new snapshot`,
    );
  }
  const counts = flattenCounts(await source.counts({ end, ...(start ? { start } : {}) }));
  return { counts, ...(start ? { countedFrom: start.toISOString() } : {}) };
}
