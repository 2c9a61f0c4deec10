/**
 * Counting what a VictoriaMetrics server stores, to compare a restored copy with the original
 * (reference E.1). Two ways, both exact and both working on 1.79.5 and 1.145:
 *
 * - `countMetrics`: two instant queries, `sum(count_over_time({__name__!=""}[W]))` (samples) and
 *   `count(count_over_time(…[W]))` (series), evaluated server-side. Cheap on the wire; subject to
 *   the server's query limits (-search.maxUniqueTimeseries, -search.maxSamplesPerQuery,
 *   -search.maxQueryDuration), whose errors are passed on with the server's words.
 * - `exportCounts`: streams `/api/v1/export` and counts lines (series) and `values` (samples).
 *   No query limits but every sample crosses the wire: for tests and deep verification.
 *
 * Not used: `/api/v1/series/count` also counts deleted series and can double-count across
 * indexdbs; `/api/v1/status/tsdb` covers one day; `/api/v1/series` treats start=0 as "not given"
 * and then looks at the last day only.
 */
import { VictoriaResponseError } from './errors.js';
import type { HttpClient } from './http.js';

/** Samples before 1971 are not counted: 1.79 answers [] when the window reaches back to the epoch. */
const WINDOW_START_MS = Date.UTC(1971, 0, 1);
/** VictoriaMetrics rejects samples more than 2 days in the future, so now + 2 days covers them all. */
const FUTURE_MS = 2 * 24 * 3600 * 1000;

export interface SeriesAndSamples {
  series: number;
  samples: number;
}

/** `/internal/force_flush`: makes just-ingested samples searchable (200, empty body). */
export async function forceFlush(http: HttpClient): Promise<void> {
  const res = await http.post('/internal/force_flush', {}, { key: 'forceFlushAuthKey' });
  if (res.status < 200 || res.status >= 300) throw http.httpError('/internal/force_flush', res, 'forceFlushAuthKey', 'force flush');
}

/**
 * The number in an instant-query answer with one unlabelled element,
 * `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[ts,"N"]}]}}`.
 * An empty result means nothing matched: 0.
 */
export function parseInstantCount(body: string): number {
  let j: unknown;
  try {
    j = JSON.parse(body);
  } catch {
    throw new Error(`not JSON: ${JSON.stringify(body.slice(0, 200))}`);
  }
  const o = j as { status?: unknown; error?: unknown; data?: { resultType?: unknown; result?: unknown } };
  if (o.status !== 'success') throw new Error(`query failed: ${typeof o.error === 'string' ? o.error : JSON.stringify(body.slice(0, 200))}`);
  if (o.data?.resultType !== 'vector' || !Array.isArray(o.data.result)) throw new Error(`not an instant vector: ${JSON.stringify(body.slice(0, 200))}`);
  const result = o.data.result as Array<{ value?: unknown }>;
  if (result.length === 0) return 0;
  if (result.length !== 1) throw new Error(`expected one result, got ${result.length}`);
  const value = result[0]?.value;
  if (!Array.isArray(value) || typeof value[1] !== 'string') throw new Error(`no value in ${JSON.stringify(body.slice(0, 200))}`);
  const n = Number(value[1]);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`count ${JSON.stringify(value[1])} is not a non-negative integer`);
  return n;
}

/** The evaluation time and window that cover every sample before `end` (exclusive). */
export function countWindow(end: Date | undefined, now = Date.now()): { time: string; window: string } {
  // count_over_time's window is (time-W, time]: evaluating at end-1ms makes `end` exclusive.
  const t = end ? end.getTime() - 1 : now + FUTURE_MS;
  const windowSeconds = Math.max(1, Math.floor((t - WINDOW_START_MS) / 1000));
  return { time: (t / 1000).toFixed(3), window: `${windowSeconds}s` };
}

async function instantCount(http: HttpClient, query: string, time: string): Promise<number> {
  const path = '/api/v1/query';
  // nocache: a restored server must not answer from a cache; latency_offset=1ms: do not hide the
  // newest 30 s (0 is rejected by 1.145, 1ms works on both).
  const res = await http.post(path, { query, time, nocache: '1', latency_offset: '1ms' }, { timeoutMs: http.longTimeoutMs });
  if (res.status !== 200) throw http.httpError(path, res, 'none', `count query ${query}`);
  try {
    return parseInstantCount(res.body);
  } catch (err) {
    throw new VictoriaResponseError(`VictoriaMetrics POST ${http.url(path)} (${query}): ${(err as Error).message}`, http.url(path));
  }
}

/** Series and samples with timestamps before `end` (default: all), counted by the server. */
export async function countMetrics(http: HttpClient, end?: Date): Promise<SeriesAndSamples> {
  const { time, window } = countWindow(end);
  const selector = `count_over_time({__name__!=""}[${window}])`;
  const [samples, series] = await Promise.all([
    instantCount(http, `sum(${selector})`, time),
    instantCount(http, `count(${selector})`, time),
  ]);
  return { series, samples };
}

/** Counts one `/api/v1/export` line: `{"metric":{…},"values":[…],"timestamps":[…]}`. */
export function exportLineSamples(line: string): number {
  const j = JSON.parse(line) as { values?: unknown };
  if (!Array.isArray(j.values)) throw new Error(`export line without values: ${JSON.stringify(line.slice(0, 200))}`);
  return j.values.length;
}

/** Series and samples before `end` (default: all), by streaming the export API. */
export async function exportCounts(http: HttpClient, end?: Date): Promise<SeriesAndSamples> {
  const path = '/api/v1/export';
  const params: Record<string, string> = { 'match[]': '{__name__!=""}', start: '1' };
  if (end) params.end = ((end.getTime() - 1) / 1000).toFixed(3); // `end` is inclusive in export
  const { body } = await http.postStream(path, params, { timeoutMs: http.longTimeoutMs });
  let series = 0;
  let samples = 0;
  let rest = '';
  const take = (line: string): void => {
    if (line.trim() === '') return;
    series++;
    samples += exportLineSamples(line);
  };
  try {
    body.setEncoding('utf8');
    for await (const chunk of body as AsyncIterable<string>) {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) take(line);
    }
    take(rest);
  } catch (err) {
    body.destroy();
    throw new VictoriaResponseError(`VictoriaMetrics POST ${http.url(path)}: ${(err as Error).message}`, http.url(path), { cause: err });
  }
  return { series, samples };
}
