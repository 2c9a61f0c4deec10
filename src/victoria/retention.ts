/**
 * Where a count must begin so that a restored copy can repeat it. VictoriaMetrics hides samples
 * older than now − `-retentionPeriod` from every query (the deadline moves with the clock) and
 * both databases drop whole partitions once they fall behind it, so a count "from the first
 * sample" taken at backup time covers a range a later count of the restored data cannot see: a
 * drill days later would always differ. Counting from an instant inside the retention at backup
 * time, recorded in the manifest, and counting the restored copy over the same range (with its
 * retention raised, drill-spec.ts) makes the two comparable.
 *
 * The retention is read from the server's `/metrics`: VictoriaMetrics (1.79 and 1.145) and
 * VictoriaLogs list every flag there as `flag{name="retentionPeriod", value="…", is_set="…"} 1`.
 */
import { durationMs, VICTORIA_UNITS_MS } from './durations.js';
import type { HttpClient } from './http.js';

/** The counted range begins this long after the server's retention deadline: the count query starts well within it. */
const COUNT_START_MARGIN_MS = 3600_000;

/** VictoriaMetrics' month in retention flags (lib/flagutil: msecsPer31Days). */
const MONTH_MS = 31 * 86_400_000;

/**
 * Milliseconds of a `-retentionPeriod` value as VictoriaMetrics reads it (lib/flagutil
 * RetentionDuration): a bare number or a number with `M` is months of 31 days; otherwise a
 * duration such as `7d`, `1y`, `2w3d` or `12h` (y = 365 days). Undefined for anything else.
 */
export function parseRetention(value: string): number | undefined {
  const months = /^(\d+(?:\.\d+)?)M?$/.exec(value);
  if (months) return Number(months[1]) * MONTH_MS;
  return durationMs(value.toLowerCase(), VICTORIA_UNITS_MS);
}

/** The value of `flag{name="<name>", value="…"}` in a `/metrics` page, if listed. */
export function flagValue(metrics: string, name: string): string | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`flag{name="${name}",`));
  return line ? /\bvalue="((?:[^"\\]|\\.)*)"/.exec(line)?.[1] : undefined;
}

/**
 * The server's retention in milliseconds, from `/metrics`; undefined when the page cannot be read
 * (e.g. it needs -metricsAuthKey) or does not list a usable value. An aborted `signal` is thrown,
 * not taken for an unreadable page.
 */
export async function serverRetentionMs(http: HttpClient, signal?: AbortSignal): Promise<number | undefined> {
  const res = await http.post('/metrics', {}, { method: 'GET', ...(signal ? { signal } : {}) }).catch((err: unknown) => {
    if (signal?.aborted) throw err;
    return undefined;
  });
  if (res?.status !== 200) return undefined;
  const value = flagValue(res.body, 'retentionPeriod');
  return value === undefined ? undefined : parseRetention(value);
}

/**
 * The instant a count started now should begin at: the retention deadline plus a margin; undefined
 * when the retention is unknown, or reaches back before `floor` (then every sample is visible).
 */
export function countStart(retentionMs: number | undefined, now: Date, floor: Date): Date | undefined {
  if (retentionMs === undefined) return undefined;
  const start = now.getTime() - retentionMs + COUNT_START_MARGIN_MS;
  return start > floor.getTime() ? new Date(start) : undefined;
}
