/**
 * Helpers shared by the benchmarks (bench/engine, bench/restore-plan, bench/exec-path): a
 * VictoriaMetrics 1.145 server on a data directory, random data for it, `du -sb`, and running a
 * command with its peak RSS.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { startLocalVictoriaMetrics } from '../src/victoria/local-server.js';
import { paths } from '../test/support/components.js';

export const MiB = 1024 * 1024;

export interface Vm {
  url: string;
  dataDir: string;
  pid: number;
  stop(): Promise<void>;
}

/** VictoriaMetrics 1.145 on `dataDir` (loopback, a free port, 100 years' retention, `extraArgs`). */
export async function startVm(dataDir: string, extraArgs: string[] = []): Promise<Vm> {
  const { url, process: proc } = await startLocalVictoriaMetrics(paths.vm145, dataDir, extraArgs);
  return { url, dataDir, pid: proc.child.pid!, stop: () => proc.stop() };
}

/**
 * JSON-lines import of `series` series of `metric` with `samples` random integer values each (about
 * 6 bytes per sample on disk, as random values compress badly), ending at `endMs`; then a flush.
 * Generated lazily so that the importer's memory stays small.
 */
export async function importRandom(vm: Vm, metric: string, series: number, samples: number, seed: number, endMs = Date.now() - 60_000): Promise<void> {
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state;
  };
  const start = endMs - samples * 10_000;
  const body = Readable.from(
    (function* () {
      for (let i = 0; i < series; i++) {
        const values: number[] = [];
        const timestamps: number[] = [];
        for (let j = 0; j < samples; j++) {
          values.push(next() * 4096 + (next() & 4095));
          timestamps.push(start + j * 10_000);
        }
        yield `${JSON.stringify({ metric: { __name__: metric, series: `s${i}`, job: 'bench' }, values, timestamps })}\n`;
      }
    })(),
  );
  const res = await request(`${vm.url}/api/v1/import`, { method: 'POST', body, headersTimeout: 0, bodyTimeout: 0 });
  const text = await res.body.text();
  if (res.statusCode !== 204) throw new Error(`import failed: HTTP ${res.statusCode}: ${text}`);
  await request(`${vm.url}/internal/force_flush`).then((r) => r.body.dump());
}

/**
 * Fills `dir` (emptied first) with data until it holds `targetBytes`: `importRound` once per round
 * on a server started on it, then `finish` before the server stops; generated.json records the
 * size, the time and `record`.
 */
export async function generateData(
  dir: string,
  targetBytes: number,
  importRound: (vm: Vm, round: number) => Promise<void>,
  finish?: (vm: Vm) => Promise<void>,
  record: Record<string, string> = {},
): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const vm = await startVm(dir);
  try {
    for (let round = 0; (await du(dir)) < targetBytes; round++) {
      process.stderr.write(`generating data: ${((await du(dir)) / MiB).toFixed(0)} MiB of ${(targetBytes / MiB).toFixed(0)} MiB\n`);
      await importRound(vm, round);
    }
    await finish?.(vm);
  } finally {
    await vm.stop();
  }
  writeFileSync(join(dir, 'generated.json'), JSON.stringify({ bytes: await du(dir), ...record, at: new Date().toISOString() }));
}

/** The middle value (the mean of the two middle ones for an even count): what the benches report over rounds. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Bytes under a directory, as `du -sb` counts them (each hard-linked file once). */
export async function du(dir: string): Promise<number> {
  const out = await run('du', ['-sb', dir]);
  return Number(out.stdout.split('\t')[0]);
}

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
  peakRssMiB: number;
}

/** Runs a command; peak RSS is the kernel's high-water mark (VmHWM), read until the process exits. */
export async function run(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const started = process.hrtime.bigint();
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20000)));
  let peakKiB = 0;
  const poll = setInterval(() => {
    try {
      const line = readFileSync(`/proc/${child.pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmHWM:'));
      peakKiB = Math.max(peakKiB, Number(line?.replace(/\D+/g, '') ?? 0));
    } catch {
      // exited between polls
    }
  }, 20);
  const [status] = (await once(child, 'close')) as [number | null];
  clearInterval(poll);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (status !== 0) throw new Error(`${bin} ${args.join(' ')} exited ${status}:\n${stderr.slice(-3000)}`);
  return { status, stdout, stderr, seconds, peakRssMiB: peakKiB / 1024 };
}
