/**
 * The VictoriaLogs test server (test/victorialogs-server, built by scripts/build-go.sh) for
 * integration tests: the real VictoriaLogs storage library behind VictoriaLogs' HTTP API, on
 * 127.0.0.1 with a port the server picks itself (port 0; it writes the address to a file, so
 * there is no race for ports), and a fresh temp data directory.
 *
 *   const vl = await startVictoriaLogs(this, { authKey: 'k' });
 *   const data = await vl.ingest(600, 3);   // 600 lines over the 3 days before today → 3 partitions
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { paths, requireComponents } from './components.js';
import { ServerProcess } from '../../src/victoria/local-server.js';

export interface StartVlOptions {
  /** -partitionManageAuthKey */
  authKey?: string;
  /** -forceFlushAuthKey */
  forceFlushAuthKey?: string;
  /** Answer 405 to non-POST /internal/* requests, like VictoriaLogs after v1.52. */
  postOnly?: boolean;
  /** Emulate v1.31-v1.43: create needs name=, answers a JSON string; no snapshot delete. */
  legacySnapshotApi?: boolean;
  /**
   * Run with a relative -storageDataPath (`data`, in a temp working directory): the server then
   * returns relative snapshot paths.
   */
  relativeDataPath?: boolean;
  /** Default 30d, so test data a few days old is kept. */
  retentionPeriod?: string;
  /** Reuse a data directory (absolute); default: a new temp dir, removed on stop(). */
  dataDir?: string;
}

export interface IngestedLogs {
  rows: number;
  /** `YYYYMMDD` → rows, one per UTC day = one per partition. */
  perDay: Record<string, number>;
}

export interface VlServer {
  url: string;
  /** Absolute path of the data directory. */
  dataDir: string;
  /** What the server was given as -storageDataPath (relative with relativeDataPath). */
  storageDataPathArg: string;
  process: ServerProcess;
  /**
   * Ingests `rows` lines through /insert/jsonline, line i on day (i mod days)+1 before today (UTC),
   * so `days` partitions, all in the past. Two streams (`app=a0|a1`), `_msg` = `line <i>`.
   */
  ingest(rows: number, days: number, opts?: { prefix?: string }): Promise<IngestedLogs>;
  stop(): Promise<void>;
}

const DAY_MS = 24 * 3600 * 1000;

export function dayName(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10).replaceAll('-', '');
}

export async function startVictoriaLogs(ctx: Mocha.Context, opts: StartVlOptions = {}): Promise<VlServer> {
  requireComponents(ctx, paths.victoriaLogsServer);
  const work = mkdtempSync(join(tmpdir(), 'vlogs-'));
  const dataDir = opts.dataDir ?? join(work, 'data');
  const storageDataPathArg = opts.relativeDataPath && opts.dataDir === undefined ? 'data' : dataDir;
  const addrFile = join(work, 'addr');
  const args = [
    '-httpListenAddr=127.0.0.1:0',
    `-listenAddrFile=${addrFile}`,
    `-storageDataPath=${storageDataPathArg}`,
    `-retentionPeriod=${opts.retentionPeriod ?? '30d'}`,
    '-loggerLevel=WARN',
    ...(opts.authKey ? [`-partitionManageAuthKey=${opts.authKey}`] : []),
    ...(opts.forceFlushAuthKey ? [`-forceFlushAuthKey=${opts.forceFlushAuthKey}`] : []),
    ...(opts.postOnly ? ['-internalPostOnly'] : []),
    ...(opts.legacySnapshotApi ? ['-legacySnapshotAPI'] : []),
  ];
  const proc = new ServerProcess({ name: 'victorialogs-server', bin: paths.victoriaLogsServer, args, cwd: work });
  const cleanup = (): void => {
    rmSync(work, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 20_000;
    while (!existsSync(addrFile)) {
      if (!proc.running) throw new Error(`victorialogs-server exited before listening:\n${proc.tail()}`);
      if (Date.now() > deadline) throw new Error(`victorialogs-server did not start within 20 s:\n${proc.tail()}`);
      await sleep(20);
    }
    const url = `http://${readFileSync(addrFile, 'utf8').trim()}`;
    await proc.waitReady(`${url}/health`);
    return {
      url,
      dataDir,
      storageDataPathArg,
      process: proc,
      ingest: (rows, days, o) => ingest(url, rows, days, o),
      stop: async () => {
        await proc.stop();
        cleanup();
      },
    };
  } catch (err) {
    await proc.stop();
    cleanup();
    throw err;
  }
}

async function ingest(url: string, rows: number, days: number, opts: { prefix?: string } = {}): Promise<IngestedLogs> {
  const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
  const perDay: Record<string, number> = {};
  const lines: string[] = [];
  for (let i = 0; i < rows; i++) {
    const dayStart = today - ((i % days) + 1) * DAY_MS;
    // Spread over the day, one second apart, deterministic for a given (i, day).
    const t = dayStart + 3600_000 + Math.floor(i / days) * 1000;
    const day = dayName(t);
    perDay[day] = (perDay[day] ?? 0) + 1;
    lines.push(JSON.stringify({ _msg: `${opts.prefix ?? 'line'} ${i}`, _time: new Date(t).toISOString(), app: `a${i % 2}`, seq: String(i) }));
  }
  // application/stream+json matters: with a form content type VictoriaLogs stores nothing.
  const res = await request(`${url}/insert/jsonline?_stream_fields=app`, {
    method: 'POST',
    headers: { 'content-type': 'application/stream+json' },
    body: `${lines.join('\n')}\n`,
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`VictoriaLogs /insert/jsonline answered HTTP ${res.statusCode}: ${text}`);
  return { rows, perDay: Object.fromEntries(Object.entries(perDay).sort(([a], [b]) => a.localeCompare(b))) };
}
