/**
 * Counting what a VictoriaMetrics server stores, to compare a restored copy with the original.
 * Two ways, both exact and both working on 1.79.5 and 1.145:
 *
 * - `countMetrics`: one instant query, `count_values("n", count_over_time({__name__!=""}[W]))`:
 *   how many series hold each number of samples, so series = Σ count and samples = Σ n × count,
 *   from one scan of the data (a `sum(…)` and a `count(…)` query would each read every sample:
 *   measured 6.1 s of server CPU for 250 M samples against 5.5 s + 5.1 s). The answer has one
 *   element per distinct per-series sample count, never more than there are series. When that is
 *   over the server's -search.maxSeriesPerAggrFunc, the two queries are used instead. Subject to
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
import { LONG_TIMEOUT_MS, type HttpClient } from './http.js';

/** Samples before 1971 are not counted: 1.79 answers [] when the window reaches back to the epoch. */
const WINDOW_START_MS = Date.UTC(1971, 0, 1);
/** The earliest instant a count covers. */
export const COUNT_FLOOR = new Date(WINDOW_START_MS);
/** VictoriaMetrics rejects samples more than 2 days in the future, so now + 2 days covers them all. */
const FUTURE_MS = 2 * 24 * 3600 * 1000;

export interface SeriesAndSamples {
  series: number;
  samples: number;
}

/**
 * The number in an instant-query answer with one unlabelled element,
 * `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[ts,"N"]}]}}`.
 * An empty result means nothing matched: 0.
 */
export function parseInstantCount(body: string): number {
  const result = instantVector(body);
  if (result.length === 0) return 0;
  if (result.length !== 1) throw new Error(`expected one result, got ${result.length}`);
  const value = result[0]?.value;
  if (!Array.isArray(value) || typeof value[1] !== 'string') throw new Error(`no value in ${JSON.stringify(body.slice(0, 200))}`);
  return nonNegativeInteger(value[1], 'count');
}

/** The elements of an instant-query answer `{"status":"success","data":{"resultType":"vector","result":[…]}}`. */
function instantVector(body: string): Array<{ metric?: unknown; value?: unknown }> {
  let j: unknown;
  try {
    j = JSON.parse(body);
  } catch {
    throw new Error(`not JSON: ${JSON.stringify(body.slice(0, 200))}`);
  }
  const o = j as { status?: unknown; error?: unknown; data?: { resultType?: unknown; result?: unknown } };
  if (o.status !== 'success') throw new Error(`query failed: ${typeof o.error === 'string' ? o.error : JSON.stringify(body.slice(0, 200))}`);
  if (o.data?.resultType !== 'vector' || !Array.isArray(o.data.result)) throw new Error(`not an instant vector: ${JSON.stringify(body.slice(0, 200))}`);
  return o.data.result as Array<{ metric?: unknown; value?: unknown }>;
}

/** A count as the server writes it, a string (`"5000"`; large ones may come as `"1.2345678e+07"`). */
function nonNegativeInteger(v: unknown, what: string): number {
  const n = typeof v === 'string' ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${what} ${JSON.stringify(v)} is not a non-negative integer`);
  return n;
}

/**
 * The evaluation time and window that cover the samples before `end` (exclusive) and from `start`
 * on (default: 1971). Both come from the same recorded instants at backup time and in a drill, so
 * the two counts cover exactly the same range.
 */
export function countWindow(end: Date | undefined, start?: Date, now = Date.now()): { time: string; window: string } {
  // count_over_time's window is (time-W, time]: evaluating at end-1ms makes `end` exclusive.
  const t = end ? end.getTime() - 1 : now + FUTURE_MS;
  const from = Math.max(start?.getTime() ?? WINDOW_START_MS, WINDOW_START_MS);
  const windowSeconds = Math.max(1, Math.floor((t - from) / 1000));
  return { time: (t / 1000).toFixed(3), window: `${windowSeconds}s` };
}

/**
 * Series and samples from a `count_values("n", count_over_time(…))` answer: elements
 * `{"metric":{"n":"<samples per series>"},"value":[ts,"<series with that many>"]}`.
 */
export function parseCountValues(body: string): SeriesAndSamples {
  let series = 0;
  let samples = 0;
  for (const element of instantVector(body)) {
    const perSeries = nonNegativeInteger((element.metric as Record<string, unknown> | undefined)?.n, 'label n');
    const many = nonNegativeInteger(Array.isArray(element.value) ? element.value[1] : undefined, 'value');
    series += many;
    samples += perSeries * many;
  }
  if (!Number.isSafeInteger(samples)) throw new Error(`${samples} samples is beyond exact arithmetic`);
  return { series, samples };
}

async function instantQuery<T>(http: HttpClient, query: string, time: string, parse: (body: string) => T, call: { timeoutMs: number; signal?: AbortSignal }): Promise<T> {
  const path = '/api/v1/query';
  // nocache: a restored server must not answer from a cache; latency_offset=1ms: do not hide the
  // newest 30 s (0 is rejected by 1.145, 1ms works on both).
  const res = await http.post(path, { query, time, nocache: '1', latency_offset: '1ms' }, call);
  if (res.status !== 200) throw http.httpError(path, res, 'none', `count query ${query}`);
  try {
    return parse(res.body);
  } catch (err) {
    throw new VictoriaResponseError(`VictoriaMetrics POST ${http.url(path)} (${query}): ${(err as Error).message}`, http.url(path));
  }
}

/** Series and samples with timestamps in [start, end) (default: all), counted by the server. */
export async function countMetrics(http: HttpClient, range: { start?: Date; end?: Date; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<SeriesAndSamples> {
  const { time, window } = countWindow(range.end, range.start);
  const selector = `count_over_time({__name__!=""}[${window}])`;
  const call = { timeoutMs: range.timeoutMs ?? LONG_TIMEOUT_MS, ...(range.signal ? { signal: range.signal } : {}) };
  try {
    return await instantQuery(http, `count_values("n", ${selector})`, time, parseCountValues, call);
  } catch (err) {
    if (!/maxSeriesPerAggrFunc/.test((err as Error).message)) throw err;
  }
  const [samples, series] = await Promise.all([
    instantQuery(http, `sum(${selector})`, time, parseInstantCount, call),
    instantQuery(http, `count(${selector})`, time, parseInstantCount, call),
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
  const { body } = await http.postStream(path, params, { timeoutMs: LONG_TIMEOUT_MS });
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
