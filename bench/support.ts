/**
 * Helpers shared by the benchmarks (bench/engine, bench/restore-plan): a VictoriaMetrics 1.145
 * server on a data directory, `du -sb`, and running a command with its peak RSS.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { freePort, ServerProcess } from '../src/victoria/local-server.js';
import { paths } from '../test/support/components.js';

export const MiB = 1024 * 1024;

export interface Vm {
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

/** VictoriaMetrics 1.145 on `dataDir` (loopback, a free port, 100 years' retention). */
export async function startVm(dataDir: string): Promise<Vm> {
  const port = await freePort();
  const proc = new ServerProcess({
    name: 'victoria-metrics 1.145',
    bin: paths.vm145,
    args: [`-httpListenAddr=127.0.0.1:${port}`, `-storageDataPath=${dataDir}`, '-retentionPeriod=100y', '-loggerLevel=WARN'],
  });
  const url = `http://127.0.0.1:${port}`;
  await proc.waitReady(`${url}/health`);
  return { url, dataDir, stop: () => proc.stop() };
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
