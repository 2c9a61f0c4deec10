/**
 * Counting log entries per daily partition: one LogsQL query,
 * `* | stats by (_time:1d) count() as n`, on `/select/logsql/query`. It answers one JSON line per
 * UTC day, `{"_time":"2026-11-21T00:00:00Z","n":"100"}` (values are strings), and UTC days are
 * exactly VictoriaLogs' partitions. The result gets an explicit name (`n`): without one the field is
 * named after the function, and that name changed between versions.
 */
import { VictoriaResponseError } from './errors.js';
import { LONG_TIMEOUT_MS, type HttpClient } from './http.js';

const VL_QUERY_PATH = '/select/logsql/query';

/**
 * The LogsQL query, limited to entries in [start, end) when given (a filter, not the `start`/`end`
 * arguments, whose inclusiveness changed in v1.36).
 */
export function dayCountQuery(range: { start?: Date; end?: Date } = {}): string {
  const { start, end } = range;
  const filter =
    start && end ? `_time:[${start.toISOString()}, ${end.toISOString()})` : start ? `_time:>=${start.toISOString()}` : end ? `_time:<${end.toISOString()}` : '*';
  return `${filter} | stats by (_time:1d) count() as n`;
}

/** `YYYYMMDD` → count, from the JSON lines of the day-count query. */
export function parseDayCounts(body: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const raw of body.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    let j: { _time?: unknown; n?: unknown };
    try {
      j = JSON.parse(line) as typeof j;
    } catch {
      // VictoriaLogs appends a plain-text error to a 200 answer when a query fails mid-stream.
      throw new Error(`unexpected line ${JSON.stringify(line.slice(0, 300))}`);
    }
    if (typeof j._time !== 'string' || typeof j.n !== 'string') throw new Error(`line without _time and n: ${JSON.stringify(line.slice(0, 300))}`);
    const t = new Date(j._time);
    if (Number.isNaN(t.getTime())) throw new Error(`bad _time ${JSON.stringify(j._time)}`);
    const day = t.toISOString().slice(0, 10).replaceAll('-', '');
    const n = Number(j.n);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`count ${JSON.stringify(j.n)} is not a non-negative integer`);
    out[day] = (out[day] ?? 0) + n;
  }
  return out;
}

/** Log entries per day and in total. Flush first (HttpClient.forceFlush) to see recent rows. */
export async function countLogs(http: HttpClient, range: { start?: Date; end?: Date; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<{ rows: number; partitions: Record<string, number> }> {
  const query = dayCountQuery(range);
  const res = await http.post(VL_QUERY_PATH, { query }, { timeoutMs: range.timeoutMs ?? LONG_TIMEOUT_MS, ...(range.signal ? { signal: range.signal } : {}) });
  if (res.status !== 200) throw http.httpError(VL_QUERY_PATH, res, 'none', `count query ${query}`);
  let partitions: Record<string, number>;
  try {
    partitions = parseDayCounts(res.body);
  } catch (err) {
    throw new VictoriaResponseError(`VictoriaLogs POST ${http.url(VL_QUERY_PATH)} (${query}): ${(err as Error).message}`, http.url(VL_QUERY_PATH));
  }
  const sorted = Object.fromEntries(Object.entries(partitions).sort(([a], [b]) => a.localeCompare(b)));
  return { rows: Object.values(sorted).reduce((a, b) => a + b, 0), partitions: sorted };
}
