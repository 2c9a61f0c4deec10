/**
 * `demo`: the README's first command, end to end on this machine with nothing to configure. It
 * starts a real VictoriaMetrics and the VictoriaLogs test server from the test components in
 * .cache/ (scripts/test-deps.sh, scripts/build-go.sh), writes sample data, backs both up to a
 * file:// store, restores each into a new directory, starts the database on the restored data and
 * prints the counts side by side.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { parseFlags } from '../../common/parse-flags.js';
import { request } from 'undici';
import { restoreBackup } from '../../engine/restore.js';
import { openStore } from '../../store/url.js';
import { openSource } from '../../victoria/index.js';
import { ServerProcess, startLocalVictoriaMetrics } from '../../victoria/local-server.js';
import type { Counts } from '../../victoria/types.js';
import { formatBytes } from '../progress.js';
import { onInterrupt } from '../interrupt.js';
import { backupFromSnapshots } from '../snapshot-backup.js';

export const DEMO_USAGE = `velero-plugin-victoria demo [--components DIR] [--keep]

Backs up and restores a real VictoriaMetrics and VictoriaLogs on this machine through file://.
DIR holds the test components (default ./.cache: vm145/ and go-build/bin/victorialogs-server,
installed by scripts/test-deps.sh and scripts/build-go.sh). --keep leaves the work directory.`;

const DAY_MS = 86_400_000;

interface Running {
  url: string;
  process: ServerProcess;
}

async function startVictoriaLogs(bin: string, dataDir: string, work: string): Promise<Running> {
  const addrFile = join(work, `vl-addr-${Date.now()}`);
  const proc = new ServerProcess({
    name: 'victorialogs-server',
    bin,
    args: ['-httpListenAddr=127.0.0.1:0', `-listenAddrFile=${addrFile}`, `-storageDataPath=${dataDir}`, '-retentionPeriod=30d', '-loggerLevel=ERROR'],
  });
  for (let i = 0; !existsSync(addrFile); i++) {
    if (!proc.running || i > 1000) throw new Error(`victorialogs-server did not start:\n${proc.tail()}`);
    await sleep(20);
  }
  const url = `http://${readFileSync(addrFile, 'utf8').trim()}`;
  await proc.waitReady(`${url}/health`);
  return { url, process: proc };
}

async function post(url: string, body: string, contentType: string): Promise<void> {
  const res = await request(url, { method: 'POST', body, headers: { 'content-type': contentType } });
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`POST ${url.split('?')[0]} answered HTTP ${res.statusCode}: ${text}`);
}

/** 50 series × 720 samples (3 hours at 15 s), ending an hour ago. */
async function writeMetrics(url: string): Promise<void> {
  const end = Math.floor((Date.now() - 3600_000) / 60_000) * 60_000;
  const lines = Array.from({ length: 50 }, (_, i) => {
    const timestamps = Array.from({ length: 720 }, (_, j) => end - (719 - j) * 15_000);
    return JSON.stringify({ metric: { __name__: 'demo_requests_total', instance: `host-${i}` }, values: timestamps.map((_, j) => i * 1000 + j), timestamps });
  });
  await post(`${url}/api/v1/import`, `${lines.join('\n')}\n`, 'application/json');
}

/** 6000 log lines over the last 3 days (3 partitions). */
async function writeLogs(url: string): Promise<void> {
  const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
  const lines = Array.from({ length: 6000 }, (_, i) => {
    const t = today - ((i % 3) + 1) * DAY_MS + 3600_000 + Math.floor(i / 3) * 1000;
    return JSON.stringify({ _msg: `request ${i} served`, _time: new Date(t).toISOString(), app: `svc-${i % 4}` });
  });
  await post(`${url}/insert/jsonline?_stream_fields=app`, `${lines.join('\n')}\n`, 'application/stream+json');
}

function countRows(c: Counts): Array<[string, number]> {
  if (c.kind === 'metrics') return [['series', c.series], ['samples', c.samples]];
  return [['log lines', c.rows], ...Object.entries(c.partitions).map(([day, n]): [string, number] => [`  partition ${day}`, n])];
}

export async function demoCommand(args: string[]): Promise<number> {
  const { values } = parseFlags({ args, options: { components: { type: 'string' }, keep: { type: 'boolean' } } });
  const components = resolve(values.components ?? '.cache');
  const bins = { metrics: join(components, 'vm145', 'usr', 'bin', 'victoria-metrics'), logs: join(components, 'go-build', 'bin', 'victorialogs-server') };
  for (const bin of Object.values(bins)) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: run bash scripts/demo.sh (it installs the components), or pass --components DIR`);
  }
  const work = mkdtempSync(join(tmpdir(), 'victoria-demo-'));
  const storeRoot = pathToFileURL(join(work, 'backups')).href;
  const store = openStore(storeRoot);
  const running: Running[] = [];
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const table: Array<[string, string, number, number]> = [];
  let ok = true;
  const stopAll = async (): Promise<void> => {
    await Promise.all(running.map((r) => r.process.stop()));
    if (!values.keep) rmSync(work, { recursive: true, force: true });
  };
  // Interrupted, the demo's databases would outlive it and its work directory stay behind. A step
  // under way that does not heed the signal (a restore writing into the work directory, a database
  // starting) ends first, and the demo goes no further: removed beneath it, the directory would be
  // written again. (The backup heeds it: its own clean-up runs before this one, interrupt.ts.)
  let interrupted = false;
  let under: Promise<unknown> = Promise.resolve();
  const step = async <T>(work: Promise<T>): Promise<T> => {
    under = work;
    try {
      return await work;
    } finally {
      // The handler exits as the signal would have; nothing is returned meanwhile.
      if (interrupted) await new Promise<never>(() => undefined);
    }
  };
  /** A database starting: counted as running as soon as it runs, so that the clean-up stops it too. */
  const started = (starting: Promise<Running>): Promise<Running> =>
    step(
      starting.then((db) => {
        running.push(db);
        return db;
      }),
    );
  const release = onInterrupt(async () => {
    interrupted = true;
    await under.catch(() => undefined);
    await stopAll();
  });
  try {
    for (const kind of ['metrics', 'logs'] as const) {
      const label = kind === 'metrics' ? 'VictoriaMetrics 1.145' : 'VictoriaLogs (test server on the real logstorage)';
      const dataDir = join(work, kind, 'data');
      mkdirSync(dataDir, { recursive: true });
      const db = await started(kind === 'metrics' ? startLocalVictoriaMetrics(bins.metrics, dataDir) : startVictoriaLogs(bins.logs, dataDir, work));
      say(`${label}: started at ${db.url}, writing sample data`);
      await step(kind === 'metrics' ? writeMetrics(db.url) : writeLogs(db.url));

      const source = openSource(kind, { url: db.url });
      const { manifest } = await backupFromSnapshots({ source, dataDir, store, name: `${kind}-1` });
      say(`  backup  ${storeRoot}/${kind}-1: ${manifest.totals.files} files, ${formatBytes(manifest.totals.bytes)}, SHA-256 of every file recorded`);
      const before = await step(source.counts());

      const restoredDir = join(work, kind, 'restored');
      const res = await step(restoreBackup({ store, name: `${kind}-1`, dataDir: restoredDir }));
      say(`  restore into ${restoredDir}: ${res.files} files, every checksum verified`);
      const copy = await started(kind === 'metrics' ? startLocalVictoriaMetrics(bins.metrics, restoredDir) : startVictoriaLogs(bins.logs, restoredDir, work));
      const after = await step(openSource(kind, { url: copy.url }).counts());
      say(`  restored database started at ${copy.url}`);
      const a = new Map(countRows(after));
      for (const [what, n] of countRows(before)) {
        table.push([kind === 'metrics' ? 'metrics' : 'logs', what, n, a.get(what) ?? -1]);
        if (a.get(what) !== n) ok = false;
      }
    }
  } finally {
    await stopAll();
    release();
  }
  say('');
  say('| database | count | source | restored | |');
  say('|---|---|---:|---:|---|');
  for (const [db, what, src, dst] of table) say(`| ${db} | ${what} | ${src} | ${dst} | ${src === dst ? 'same' : 'DIFFERENT'} |`);
  say('');
  say(ok ? 'demo passed: the restored databases hold exactly the data that was backed up' : 'demo FAILED: counts differ');
  if (values.keep) say(`work directory kept: ${work}`);
  return ok ? 0 : 1;
}
