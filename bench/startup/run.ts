/**
 * Start-up benchmark: time from spawn to the go-plugin handshake line, and resident memory after
 * ListPlugins, for our single executable and for a Go plugin built with the same Debian toolchain
 * as the Velero host harness (the anchor). Velero starts a plugin process per backup, restore,
 * deletion and every 10 s per asynchronous-operation poll, so both numbers are paid often.
 *
 *   node --import tsx bench/startup/run.ts [--runs N]
 *
 * Prints a Markdown table with medians and ratios (ours / Go); docs/benchmarks.md records results.
 */
import { spawn } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { clientFor } from '../../test/support/grpc-clients.js';

const root = join(import.meta.dirname, '..', '..');
const { values } = parseArgs({ options: { runs: { type: 'string', default: '20' } } });
const runs = Number(values.runs);

const subjects = [
  { label: 'velero-plugin-victoria (Node 22 SEA)', path: join(root, 'dist', 'velero-plugin-victoria') },
  { label: 'Go anchor plugin (go-plugin 1.0.1, Go 1.23)', path: join(root, '.cache', 'go-build', 'bin', 'go-anchor-plugin') },
];

function rssKiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(line?.replace(/\D+/g, '') ?? NaN);
}

async function once(path: string): Promise<{ handshakeMs: number; rssMiB: number }> {
  const started = process.hrtime.bigint();
  const child = spawn(path, ['--features=', '--uploader-type=kopia'], {
    env: { ...process.env, VELERO_PLUGIN: 'hello', PLUGIN_PROTOCOL_VERSIONS: '2', PLUGIN_MIN_PORT: '10000', PLUGIN_MAX_PORT: '25000' },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`${path} exited with ${code} before the handshake`)));
  });
  const handshakeMs = Number(process.hrtime.bigint() - started) / 1e6;
  const socket = line.split('|')[3]!;
  const lister = clientFor(socket, 'PluginLister');
  await lister.call('ListPlugins', {});
  const rssMiB = rssKiB(child.pid!) / 1024;
  lister.close();
  const controller = clientFor(socket, 'GRPCController');
  const exited = new Promise((r) => child.once('exit', r));
  await controller.call('Shutdown', {}).catch(() => undefined);
  controller.close();
  await exited;
  return { handshakeMs, rssMiB };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const results: Array<{ label: string; handshakeMs: number; p90Ms: number; rssMiB: number }> = [];
for (const s of subjects) {
  if (!existsSync(s.path)) throw new Error(`${s.path} is missing: run npm run build and bash scripts/build-go.sh first`);
  await once(s.path); // warm the page cache, as a Velero server that has run a while has
  const samples = [];
  for (let i = 0; i < runs; i++) samples.push(await once(s.path));
  const times = samples.map((x) => x.handshakeMs).sort((a, b) => a - b);
  results.push({
    label: s.label,
    handshakeMs: median(times),
    p90Ms: times[Math.floor(times.length * 0.9)]!,
    rssMiB: median(samples.map((x) => x.rssMiB)),
  });
}

const [ours, anchor] = results as [(typeof results)[0], (typeof results)[0]];
console.log(`Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; ${new Date().toISOString().slice(0, 10)}; ${runs} runs each\n`);
console.log('| plugin | spawn → handshake, median | p90 | RSS after ListPlugins, median |');
console.log('|---|---|---|---|');
for (const r of results) console.log(`| ${r.label} | ${r.handshakeMs.toFixed(1)} ms | ${r.p90Ms.toFixed(1)} ms | ${r.rssMiB.toFixed(1)} MiB |`);
console.log(`| ratio ours / Go | ${(ours.handshakeMs / anchor.handshakeMs).toFixed(1)}× | ${(ours.p90Ms / anchor.p90Ms).toFixed(1)}× | ${(ours.rssMiB / anchor.rssMiB).toFixed(1)}× |`);
console.log(`\nTargets: handshake < 300 ms (${ours.handshakeMs < 300 ? 'met' : 'MISSED'}), RSS < 100 MB (${ours.rssMiB * 1.048576 < 100 ? 'met' : 'MISSED'}).`);
