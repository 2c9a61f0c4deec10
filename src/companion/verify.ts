/**
 * `companion verify --expect JSON`: the check at the end of a restore drill (docs/velero-restore.md,
 * Drills), run by Velero as a post-restore exec hook in the companion. Waits until the
 * restored database answers `/health`, counts what it stores the way `companion counts` counted at
 * backup time (flattenCounts: series/samples, or rows and rows.YYYYMMDD) and compares. That count
 * covered the data before the snapshot time (less a margin for late data), and a restored database
 * holds nothing newer than the snapshot, so by default everything is counted; `--end` and `--start`
 * limit the count to the range the backup counted (the manifest's countedBefore and countedFrom;
 * the drill raises the database's retention so that it keeps that whole range, drill-spec.ts).
 * Prints one JSON line, `{"verify":"ok"|"mismatch"|"error", expected, found}`; exits 0 only when
 * every count matches.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { flattenCounts, isCountKey } from '../victoria/flat-counts.js';
import { HttpClient } from '../victoria/http.js';
import type { SnapshotSource } from '../victoria/types.js';
import { openConfiguredSource, parseCompanionConfig, type CompanionConfig } from './config.js';
import { CompanionError, usageError } from './errors.js';
import { parseDurationFlag, splitOwnFlags } from './own-flags.js';
import { COMPANION_EXIT } from './protocol.js';

export const DEFAULT_VERIFY_TIMEOUT = '5m';
const HEALTH_POLL_MS = 1000;

export interface VerifyOptions {
  expected: Record<string, number>;
  /** Count only data before this instant. */
  end?: Date;
  /** Count only data from this instant on. */
  start?: Date;
  /** How long to wait for the database to answer /health (ms). */
  timeoutMs: number;
  /** How long the counting query may take (ms; default: the client's long timeout, 5 min). */
  countTimeoutMs?: number;
  /**
   * Ask the database at this host instead of the URL's, on the URL's port (a drill: the copy in
   * its own pod, never a database elsewhere that a Service name or a node address would reach).
   */
  host?: string;
}

export interface VerifyResult {
  verify: 'ok' | 'mismatch';
  kind: CompanionConfig['kind'];
  expected: Record<string, number>;
  found: Record<string, number>;
  /** The keys whose counts differ (absent on one side counts as a difference). */
  differences: Array<{ key: string; expected: number | null; found: number | null }>;
}

/** A DNS name, an IPv4 address or a bracketed IPv6 address: what may stand between `//` and the port. */
const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])$/;

/** `url` with its host replaced by `host`, keeping the scheme, credentials, port and path. */
export function withHost(url: string, host: string): string {
  const u = new URL(url);
  u.hostname = host;
  return u.toString().replace(/\/$/, url.endsWith('/') ? '/' : '');
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

/** Splits `verify`'s own flags from the shared companion flags (config.ts parses those strictly). */
export function parseVerifyArgs(args: string[]): { options: VerifyOptions; rest: string[] } {
  const { values, rest } = splitOwnFlags(args, ['expect', 'end', 'start', 'timeout', 'count-timeout', 'host']);
  if (values.expect === undefined) throw usageError('--expect is required: the counts recorded at backup time, e.g. --expect \'{"series":40,"samples":12000}\'');
  let expected: unknown;
  try {
    expected = JSON.parse(values.expect);
  } catch (err) {
    throw usageError(`--expect is not JSON (${(err as Error).message})`);
  }
  if (typeof expected !== 'object' || expected === null || Array.isArray(expected) || Object.keys(expected).length === 0) {
    throw usageError('--expect must be a JSON object of counts, e.g. {"series":40,"samples":12000} or {"rows":2000,"rows.20261121":2000}');
  }
  for (const [k, n] of Object.entries(expected)) {
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw usageError(`--expect: ${k} is ${JSON.stringify(n)}, not a count`);
  }
  const time = (flag: string, text: string | undefined): Date | undefined => {
    if (text === undefined) return undefined;
    // RFC 3339 with its zone only: a time without one would be read in the container's local zone.
    const t = RFC3339.test(text) ? new Date(text) : new Date(NaN);
    if (Number.isNaN(t.getTime())) throw usageError(`${flag} ${JSON.stringify(text)} is not an RFC 3339 time with its zone, such as 2026-11-21T12:00:00Z (as the manifest's countedBefore)`);
    return t;
  };
  const end = time('--end', values.end);
  const start = time('--start', values.start);
  if (start && end && start >= end) throw usageError(`--start ${values.start} is not before --end ${values.end}`);
  const timeoutMs = parseDurationFlag('--timeout', values.timeout ?? DEFAULT_VERIFY_TIMEOUT);
  // The drill passes the backup's countTimeoutSeconds: a count that took that long then takes as long now.
  const countTimeoutMs = values['count-timeout'] === undefined ? undefined : parseDurationFlag('--count-timeout', values['count-timeout']);
  const host = values.host;
  if (host !== undefined && !HOST.test(host)) throw usageError(`--host ${JSON.stringify(host)} is not a host name or address, such as 127.0.0.1`);
  return {
    options: {
      expected: expected as Record<string, number>,
      ...(end ? { end } : {}),
      ...(start ? { start } : {}),
      timeoutMs,
      ...(countTimeoutMs ? { countTimeoutMs } : {}),
      ...(host ? { host } : {}),
    },
    rest,
  };
}

/** Waits until the database answers /health with 200, or throws after `timeoutMs`. */
async function waitHealthy(config: CompanionConfig, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const product = config.kind === 'metrics' ? 'VictoriaMetrics' : 'VictoriaLogs';
  const http = new HttpClient(product, { url: config.url, timeoutMs: 5000 });
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    signal?.throwIfAborted();
    try {
      const res = await http.post('/health', {}, { method: 'GET' });
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() >= deadline) {
      throw new CompanionError(`${product} at ${http.baseUrl} did not answer /health within ${Math.round(timeoutMs / 1000)} s (last: ${last}): is it running on the restored data? See its container's log`);
    }
    await sleep(Math.min(HEALTH_POLL_MS, Math.max(deadline - Date.now(), 0)));
  }
}

/**
 * Keys that this kind of database cannot have are a mistake in the call (another database's counts,
 * or the wrong --kind), not a restore that lost data: a usage error, not a mismatch.
 */
export function checkExpectedKeys(kind: CompanionConfig['kind'], expected: Record<string, number>): void {
  const foreign = Object.keys(expected).filter((k) => !isCountKey(kind, k));
  if (foreign.length === 0) return;
  const keys = kind === 'metrics' ? 'series and samples' : 'rows and rows.YYYYMMDD';
  throw usageError(`--expect holds ${foreign.join(', ')}, which ${kind} counts never have (${keys}): give the counts of this database's backup, or check --kind / VICTORIA_KIND`);
}

function compareCounts(expected: Record<string, number>, found: Record<string, number>): VerifyResult['differences'] {
  const keys = [...new Set([...Object.keys(expected), ...Object.keys(found)])].sort();
  return keys
    .filter((k) => expected[k] !== found[k])
    .map((k) => ({ key: k, expected: expected[k] ?? null, found: found[k] ?? null }));
}

async function verifyCounts(config: CompanionConfig, options: VerifyOptions, source: SnapshotSource = openConfiguredSource(config)): Promise<VerifyResult> {
  await waitHealthy(config, options.timeoutMs);
  const found = flattenCounts(await source.counts({ end: options.end, start: options.start, ...(options.countTimeoutMs ? { timeoutMs: options.countTimeoutMs } : {}) }));
  const differences = compareCounts(options.expected, found);
  return { verify: differences.length === 0 ? 'ok' : 'mismatch', kind: config.kind, expected: options.expected, found, differences };
}

/** `companion verify …`: one JSON line on stdout, a sentence on stderr when it fails; the exit code. */
export async function verifyCommand(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let expected: Record<string, number> | null = null;
  try {
    const { options, rest } = parseVerifyArgs(args);
    expected = options.expected;
    const configured = parseCompanionConfig(rest, env);
    const config = options.host ? { ...configured, url: withHost(configured.url, options.host) } : configured;
    checkExpectedKeys(config.kind, options.expected);
    const result = await verifyCounts(config, options);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    if (result.verify === 'ok') return COMPANION_EXIT.ok;
    const what = result.differences.map((d) => `${d.key}: expected ${d.expected ?? 'none'}, found ${d.found ?? 'none'}`).join('; ');
    process.stderr.write(`velero-plugin-victoria companion verify: the restored ${config.kind} differ from the counts at backup time (${what})\n`);
    return COMPANION_EXIT.failed;
  } catch (err) {
    const message = (err as Error).message;
    process.stdout.write(`${JSON.stringify({ verify: 'error', expected, error: message })}\n`);
    process.stderr.write(`velero-plugin-victoria companion verify: ${message}\n`);
    const code = err instanceof CompanionError ? err.exitCode : COMPANION_EXIT.failed;
    return code;
  }
}
