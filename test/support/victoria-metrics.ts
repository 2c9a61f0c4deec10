/**
 * A real VictoriaMetrics single node for integration tests: 1.145 (sid, current layout) or 1.79.5
 * (bookworm, legacy layout), from `scripts/test-deps.sh vm`. On 127.0.0.1, a fresh temp data
 * directory, optional -snapshotAuthKey, and deterministic test data.
 *
 *   const vm = await startVictoriaMetrics(this, { version: '1.145', snapshotAuthKey: 'k' });
 *   const data = await vm.importSeries(20, 50);   // 20 series × 50 samples
 *   ...
 *   await vm.stop();
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { paths, requireComponents } from './components.js';
import { freePort, isAddressInUse, ServerProcess } from '../../src/victoria/local-server.js';

export type VmVersion = '1.145' | '1.79';
export const VM_VERSIONS: readonly VmVersion[] = ['1.145', '1.79'];

/**
 * The server and the vmbackup/vmrestore of the same version. Both tools start a metrics HTTP server
 * on :8420 / :8421 on all interfaces by default: pass `-httpListenAddr=127.0.0.1:<freePort()>`.
 */
export interface VmBinaries {
  victoriaMetrics: string;
  vmbackup: string;
  vmrestore: string;
}

export function vmBinaries(version: VmVersion): VmBinaries {
  return version === '1.145'
    ? { victoriaMetrics: paths.vm145, vmbackup: paths.vmbackup145, vmrestore: paths.vmrestore145 }
    : { victoriaMetrics: paths.vm179, vmbackup: paths.vmbackup179, vmrestore: paths.vmrestore179 };
}

export interface StartVmOptions {
  version: VmVersion;
  snapshotAuthKey?: string;
  forceFlushAuthKey?: string;
  /** `-httpAuth.username`/`-httpAuth.password`: every endpoint but /health asks for basic auth (importSeries sends it). */
  basicAuth?: { username: string; password: string };
  /** Reuse a data directory (e.g. a restored one); default: a new temp dir, removed on stop(). */
  dataDir?: string;
  extraArgs?: string[];
}

export interface ImportedData {
  series: number;
  samples: number;
  /** First and last sample timestamps (ms). */
  firstMs: number;
  lastMs: number;
  metric: string;
}

export interface VmServer {
  version: VmVersion;
  url: string;
  dataDir: string;
  bin: VmBinaries;
  process: ServerProcess;
  /**
   * Imports `series` series × `samples` samples through /api/v1/import (JSON lines, exact
   * timestamps), metric `metric` (default `vpv_test`) with labels `series="<i>"` and `job="vpv"`.
   * Timestamps are `step` ms apart, ending an hour ago on a whole minute, so they are accepted by
   * every retention and never hidden by -search.latencyOffset. Values are `i * 1e6 + j`.
   */
  importSeries(series: number, samples: number, opts?: { metric?: string; stepMs?: number; endMs?: number }): Promise<ImportedData>;
  /** SIGINT and wait; removes the data dir unless it was given. */
  stop(): Promise<void>;
}

/** Starts VictoriaMetrics; skips (or fails under REQUIRE_INTEGRATION=1) if it is not installed. */
export async function startVictoriaMetrics(ctx: Mocha.Context, opts: StartVmOptions): Promise<VmServer> {
  const bin = vmBinaries(opts.version);
  requireComponents(ctx, bin.victoriaMetrics, bin.vmbackup, bin.vmrestore);
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), `vm${opts.version.replace('.', '')}-`));

  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const args = [
      `-httpListenAddr=127.0.0.1:${port}`,
      `-storageDataPath=${dataDir}`,
      // Test data may be older than the default 1 month.
      '-retentionPeriod=100y',
      '-loggerLevel=WARN',
      ...(opts.snapshotAuthKey ? [`-snapshotAuthKey=${opts.snapshotAuthKey}`] : []),
      ...(opts.forceFlushAuthKey ? [`-forceFlushAuthKey=${opts.forceFlushAuthKey}`] : []),
      ...(opts.basicAuth ? [`-httpAuth.username=${opts.basicAuth.username}`, `-httpAuth.password=${opts.basicAuth.password}`] : []),
      ...(opts.extraArgs ?? []),
    ];
    const proc = new ServerProcess({ name: `victoria-metrics ${opts.version}`, bin: bin.victoriaMetrics, args });
    const url = `http://127.0.0.1:${port}`;
    try {
      await proc.waitReady(`${url}/health`);
    } catch (err) {
      await proc.stop();
      if (attempt < 5 && isAddressInUse(proc.log())) continue;
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
      throw err;
    }
    return {
      version: opts.version,
      url,
      dataDir,
      bin,
      process: proc,
      importSeries: (series, samples, o) => importSeries(url, series, samples, { ...o, basicAuth: opts.basicAuth }),
      stop: async () => {
        await proc.stop();
        if (ownDir) rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
}

async function importSeries(
  url: string,
  series: number,
  samples: number,
  opts: { metric?: string; stepMs?: number; endMs?: number; basicAuth?: StartVmOptions['basicAuth'] } = {},
): Promise<ImportedData> {
  const metric = opts.metric ?? 'vpv_test';
  const stepMs = opts.stepMs ?? 15_000;
  const lastMs = opts.endMs ?? Math.floor((Date.now() - 3600_000) / 60_000) * 60_000;
  const firstMs = lastMs - (samples - 1) * stepMs;
  const lines: string[] = [];
  for (let i = 0; i < series; i++) {
    const timestamps: number[] = [];
    const values: number[] = [];
    for (let j = 0; j < samples; j++) {
      timestamps.push(firstMs + j * stepMs);
      values.push(i * 1e6 + j);
    }
    lines.push(JSON.stringify({ metric: { __name__: metric, series: String(i), job: 'vpv' }, values, timestamps }));
  }
  const auth = opts.basicAuth ? { authorization: `Basic ${Buffer.from(`${opts.basicAuth.username}:${opts.basicAuth.password}`).toString('base64')}` } : undefined;
  const res = await request(`${url}/api/v1/import`, { method: 'POST', headers: auth, body: `${lines.join('\n')}\n`, headersTimeout: 60_000, bodyTimeout: 60_000 });
  const text = await res.body.text();
  if (res.statusCode !== 204) throw new Error(`VictoriaMetrics import answered HTTP ${res.statusCode}: ${text}`);
  return { series, samples: series * samples, firstMs, lastMs, metric };
}
