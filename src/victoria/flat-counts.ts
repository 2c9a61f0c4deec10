/**
 * Counts as flat numbers, the form the manifest, the companion's record and `companion verify
 * --expect` share: series/samples, or rows and rows per partition day (`rows.YYYYMMDD`).
 */
import type { Counts } from './types.js';

export function flattenCounts(counts: Counts): Record<string, number> {
  if (counts.kind === 'metrics') return { series: counts.series, samples: counts.samples };
  const out: Record<string, number> = { rows: counts.rows };
  for (const [day, rows] of Object.entries(counts.partitions)) out[`rows.${day}`] = rows;
  return out;
}
