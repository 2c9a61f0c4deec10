/**
 * Engine benchmark: our CLI against vmbackup/vmrestore 1.145, side by side in one run, on the same
 * VictoriaMetrics data and the same S3 server (moto in authenticated mode, on loopback):
 *
 *   1. full backup of ≥ 1 GiB (ours vs vmbackup), with peak RSS;
 *   2. incremental after ~5% new data (ours, based on our full, vs `vmbackup -origin` of its full);
 *   3. restore (ours, every SHA-256 checked, vs vmrestore);
 *   4. the server's raw rates as the ceiling: one large PutObject stream and one GetObject.
 *
 *   node --import tsx bench/engine/run.ts [--gib 1.1] [--keep]
 *
 * The data set is generated once into .cache/bench/vm145-data (random values compress badly, so
 * the data is as large on disk as it claims) and hard-linked into a scratch copy for every run, so
 * runs start from the same files. Prints Markdown tables; docs/benchmarks.md records results.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { S3Store } from '../../src/store/s3.js';
import { freePort, ServerProcess } from '../../src/victoria/local-server.js';
import { CACHE, paths } from '../../test/support/components.js';
import { startMoto, type Moto } from '../../test/support/moto.js';

const MiB = 1024 * 1024;
const { values } = parseArgs({ options: { gib: { type: 'string', default: '1.1' }, keep: { type: 'boolean', default: false } } });
const targetBytes = Number(values.gib) * 1024 * MiB;

interface Vm {
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

async function startVm(dataDir: string): Promise<Vm> {
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
async function du(dir: string): Promise<number> {
  const out = await run('du', ['-sb', dir]);
  return Number(out.stdout.split('\t')[0]);
}

/**
 * JSON-lines import of `series` series with `samples` random integer values each (about 6 bytes per
 * sample on disk). Generated lazily so that the importer's memory stays small.
 */
async function importRandom(vm: Vm, metric: string, series: number, samples: number, seed: number): Promise<void> {
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state;
  };
  const end = Date.now() - 60_000;
  const start = end - samples * 10_000;
  let i = 0;
  const body = Readable.from(
    (function* () {
      for (; i < series; i++) {
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

/** The shared data set: generated once, reused by later runs. */
async function dataSet(): Promise<string> {
  const dir = join(CACHE, 'bench', 'vm145-data');
  if (existsSync(join(dir, 'generated.json'))) {
    const info = JSON.parse(readFileSync(join(dir, 'generated.json'), 'utf8')) as { bytes: number };
    if (info.bytes >= targetBytes) return dir;
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const vm = await startVm(dir);
  try {
    for (let round = 0; (await du(dir)) < targetBytes; round++) {
      process.stderr.write(`generating data: ${((await du(dir)) / MiB).toFixed(0)} MiB of ${(targetBytes / MiB).toFixed(0)} MiB\n`);
      await importRandom(vm, 'bench_random', 5000, 5000, 1000 + round);
    }
  } finally {
    await vm.stop();
  }
  const bytes = await du(dir);
  await import('node:fs/promises').then((fs) => fs.writeFile(join(dir, 'generated.json'), JSON.stringify({ bytes, at: new Date().toISOString() })));
  return dir;
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
  peakRssMiB: number;
}

/** Runs a command; peak RSS is the kernel's high-water mark (VmHWM), read until the process exits. */
async function run(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
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

async function main(): Promise<void> {
  for (const f of [paths.plugin, paths.vm145, paths.vmbackup145, paths.vmrestore145, paths.motoServer]) {
    if (!existsSync(f)) throw new Error(`missing ${f}: run scripts/test.sh (or scripts/test-deps.sh vm moto and npm run build) first`);
  }
  const source = await dataSet();
  const scratch = mkdtempSync(join(CACHE, 'bench', 'run-'));
  const dataDir = join(scratch, 'data');
  // Hard links: VictoriaMetrics never changes a part file in place, it writes new parts and renames.
  await run('cp', ['-al', source, dataDir]);
  const moto: Moto = await startMoto({ bucket: 'bench' });
  const vm = await startVm(dataDir);
  const env = { AWS_ACCESS_KEY_ID: moto.accessKeyId, AWS_SECRET_ACCESS_KEY: moto.secretAccessKey, AWS_REGION: moto.region };
  const s3 = ['--s3-endpoint', moto.endpoint, '--checksum-algorithm', ''];
  const vmS3 = [`-customS3Endpoint=${moto.endpoint}`, '-s3ForcePathStyle'];
  const vmPort = async () => `-httpListenAddr=127.0.0.1:${await freePort()}`;
  const rows: string[][] = [];
  const ratio = (ours: number, peer: number) => `${(ours / peer).toFixed(2)}×`;
  const rate = (bytes: number, s: number) => `${(bytes / MiB / s).toFixed(1)} MiB/s`;
  try {
    // Warm the page cache for both tools alike.
    await run('sh', ['-c', `find '${dataDir}' -type f -exec cat {} + > /dev/null`]);
    const bytes = await du(dataDir);

    // 1. Full backups.
    const oursFull = await run(paths.plugin, ['backup', '--kind', 'metrics', '--url', vm.url, '--data-dir', dataDir, '--dst', `s3://bench/ours`, '--name', 'full', '--json', ...s3], env);
    const oursFullJson = JSON.parse(oursFull.stdout.trim().split('\n').at(-1)!) as { bytesTotal: number; bytesUploaded: number; bytesCopied: number; files: number };
    const theirsFull = await run(paths.vmbackup145, [await vmPort(), `-storageDataPath=${dataDir}`, `-snapshot.createURL=${vm.url}/snapshot/create`, '-dst=s3://bench/vmbackup/full', ...vmS3], env);
    rows.push(['full backup', `${(oursFullJson.bytesTotal / MiB).toFixed(0)} MiB, ${oursFullJson.files} files`, `${oursFull.seconds.toFixed(1)} s (${rate(oursFullJson.bytesTotal, oursFull.seconds)})`, `${theirsFull.seconds.toFixed(1)} s (${rate(oursFullJson.bytesTotal, theirsFull.seconds)})`, ratio(theirsFull.seconds, oursFull.seconds), `${oursFull.peakRssMiB.toFixed(0)} MiB`, `${theirsFull.peakRssMiB.toFixed(0)} MiB`]);

    // 2. ~5% new data, then incrementals.
    await importRandom(vm, 'bench_new', 250, 5000, 99);
    await new Promise((r) => setTimeout(r, 2000));
    const grown = await du(dataDir);
    const oursIncr = await run(paths.plugin, ['backup', '--kind', 'metrics', '--url', vm.url, '--data-dir', dataDir, '--dst', `s3://bench/ours`, '--name', 'incr', '--json', ...s3], env);
    const oursIncrJson = JSON.parse(oursIncr.stdout.trim().split('\n').at(-1)!) as { bytesTotal: number; bytesUploaded: number; bytesCopied: number };
    const theirsIncr = await run(paths.vmbackup145, [await vmPort(), `-storageDataPath=${dataDir}`, `-snapshot.createURL=${vm.url}/snapshot/create`, '-dst=s3://bench/vmbackup/incr', '-origin=s3://bench/vmbackup/full', ...vmS3], env);
    const theirsUploaded = /uploaded (\d+) bytes/.exec(theirsIncr.stderr);
    rows.push([
      'incremental (~5% new)',
      `+${((grown - bytes) / MiB).toFixed(0)} MiB on disk; uploaded ours ${(oursIncrJson.bytesUploaded / MiB).toFixed(1)} MiB, vmbackup ${theirsUploaded ? (Number(theirsUploaded[1]) / MiB).toFixed(1) : '?'} MiB`,
      `${oursIncr.seconds.toFixed(1)} s`,
      `${theirsIncr.seconds.toFixed(1)} s`,
      ratio(theirsIncr.seconds, oursIncr.seconds),
      `${oursIncr.peakRssMiB.toFixed(0)} MiB`,
      `${theirsIncr.peakRssMiB.toFixed(0)} MiB`,
    ]);
    await vm.stop();

    // 3. Restores of the full backups into empty directories.
    const oursRestore = await run(paths.plugin, ['restore', '--src', 's3://bench/ours/full', '--data-dir', join(scratch, 'restore-ours'), '--json', ...s3], env);
    const theirsRestore = await run(paths.vmrestore145, [await vmPort(), '-src=s3://bench/vmbackup/full', `-storageDataPath=${join(scratch, 'restore-vmrestore')}`, ...vmS3], env);
    rows.push(['restore (full)', 'ours checks every SHA-256', `${oursRestore.seconds.toFixed(1)} s (${rate(oursFullJson.bytesTotal, oursRestore.seconds)})`, `${theirsRestore.seconds.toFixed(1)} s (${rate(oursFullJson.bytesTotal, theirsRestore.seconds)})`, ratio(theirsRestore.seconds, oursRestore.seconds), `${oursRestore.peakRssMiB.toFixed(0)} MiB`, `${theirsRestore.peakRssMiB.toFixed(0)} MiB`]);

    // 4. The server's raw rates: one multipart stream up and one GET down, nothing else.
    // The same settings as the CLI with --checksum-algorithm "": no flexible checksums.
    const store = new S3Store({
      bucket: 'bench',
      prefix: 'raw',
      endpoint: moto.endpoint,
      region: moto.region,
      credentials: { accessKeyId: moto.accessKeyId, secretAccessKey: moto.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const rawSize = 512 * MiB;
    const chunk = Buffer.alloc(MiB, 7);
    let t = process.hrtime.bigint();
    await store.put('blob', Readable.from((function* () { for (let i = 0; i < rawSize / MiB; i++) yield chunk; })()), rawSize);
    const upS = Number(process.hrtime.bigint() - t) / 1e9;
    t = process.hrtime.bigint();
    for await (const _ of await store.get('blob')) void _;
    const downS = Number(process.hrtime.bigint() - t) / 1e9;

    const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
    console.log(`\n${when} UTC, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, load ${loadavg()[0]!.toFixed(1)}; data ${(bytes / MiB).toFixed(0)} MiB (VictoriaMetrics 1.145), moto 5.2.4 (auth) on loopback\n`);
    console.log('| step | data | ours | vmbackup / vmrestore 1.145 | speed ratio (peer time / ours) | ours peak RSS | peer peak RSS |');
    console.log('|---|---|---|---|---|---|---|');
    for (const r of rows) console.log(`| ${r.join(' | ')} |`);
    console.log(`\nServer ceiling: one 512 MiB multipart PutObject stream ${rate(rawSize, upS)}, one GetObject ${rate(rawSize, downS)}.`);
  } finally {
    await vm.stop().catch(() => undefined);
    await moto.stop();
    if (!values.keep) rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
