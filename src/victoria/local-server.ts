/**
 * Starting and stopping local database servers (the demo, the benchmarks and the integration tests): on 127.0.0.1 only, with a
 * readiness probe, output kept for failure messages, and a stop that sends SIGINT (so the server
 * flushes and closes its storage) and waits for the exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';

/** A port that was free a moment ago (bind port 0, read it, close): another process may take it before the caller binds it. */
export async function freePort(): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no port from the OS'))));
    });
  });
}

export interface ServerProcessOptions {
  name: string;
  bin: string;
  args: string[];
  cwd?: string;
}

export class ServerProcess {
  private output = '';
  private exited: Promise<number | null>;
  private exitCode: number | null | undefined;
  readonly child: ChildProcess;

  constructor(readonly opts: ServerProcessOptions) {
    this.child = spawn(opts.bin, opts.args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer): void => {
      // The last 64 KiB is plenty to explain a failed start.
      this.output = (this.output + b.toString('utf8')).slice(-65536);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      this.child.on('error', (err) => {
        this.output += `\nspawn error: ${err.message}`;
        this.exitCode = null;
        resolve(null);
      });
      this.child.on('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? null : 0);
        resolve(this.exitCode);
      });
    });
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** The server's recent output, for failure messages. */
  log(): string {
    return this.output;
  }

  /** Polls `url` until it answers 200; fails early if the process exits. */
  async waitReady(url: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`${this.opts.name} exited with ${String(this.exitCode)} before it was ready:\n${this.tail()}`);
      try {
        const res = await request(url, { headersTimeout: 2000, bodyTimeout: 2000 });
        await res.body.dump();
        if (res.statusCode === 200) return;
      } catch {
        // not listening yet
      }
      await sleep(25);
    }
    throw new Error(`${this.opts.name} was not ready at ${url} within ${timeoutMs} ms:\n${this.tail()}`);
  }

  /** SIGINT, wait up to `timeoutMs`, then SIGKILL. Safe to call twice. */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGINT');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  tail(lines = 30): string {
    return this.output.split('\n').slice(-lines).join('\n');
  }
}

/** Whether a failed start was a port clash worth retrying with another port. */
export function isAddressInUse(output: string): boolean {
  return /address already in use/i.test(output);
}

/**
 * VictoriaMetrics single node on `dataDir`, on loopback at a free port, with 100 years' retention
 * (old sample data is kept) and `extraArgs`; resolved once its /health answers.
 */
export async function startLocalVictoriaMetrics(bin: string, dataDir: string, extraArgs: string[] = []): Promise<{ url: string; process: ServerProcess }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = new ServerProcess({
    name: 'victoria-metrics',
    bin,
    args: [`-httpListenAddr=127.0.0.1:${port}`, `-storageDataPath=${dataDir}`, '-retentionPeriod=100y', '-loggerLevel=ERROR', ...extraArgs],
  });
  await proc.waitReady(`${url}/health`);
  return { url, process: proc };
}
