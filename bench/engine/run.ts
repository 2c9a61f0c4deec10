/**
 * Engine benchmark: our CLI against vmbackup/vmrestore 1.145, side by side in one run, on the same
 * VictoriaMetrics data and the same S3 server (moto in authenticated mode, on loopback):
 *
 *   1. full backup of ≥ 1 GiB (ours vs vmbackup), with peak RSS; ours again with --no-counts, since
 *      vmbackup counts nothing and our count (a query over every sample) competes for the CPU;
 *   2. incremental after ~5% new data (ours, based on our full, vs `vmbackup -origin` of its full);
 *   3. restore (ours, every SHA-256 checked, vs vmrestore);
 *   4. the server's raw rates as the ceiling: one large PutObject stream and one GetObject.
 *
 *   node --import tsx bench/engine/run.ts [--gib 1.1] [--keep]
 *
 * The data set is generated once into .cache/bench/vm145-data: one round of random samples per
 * month partition (random values compress badly, so the data is as large on disk as it claims),
 * left to VictoriaMetrics' background merges until they settle, so that every run starts from the
 * same, stable parts. Each run hard-links it into a scratch copy.
 *
 * Both tools must back up the same files: before every backup the bench waits until the server's
 * merges have settled (no active merge, no in-memory part, the same parts for 5 s), and it compares
 * the part directories each tool saw, and runs `sync`, so that no step pays for the write-back of
 * the one before. Prints Markdown tables; docs/benchmarks.md records results.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { S3Store } from '../../src/store/s3.js';
import { freePort } from '../../src/victoria/local-server.js';
import { CACHE, paths } from '../../test/support/components.js';
import { startMoto, type Moto } from '../../test/support/moto.js';
import { MiB, du, generateData, importRandom, run, startVm, type Run, type Vm } from '../support.js';

/** Bumped when the generator changes: an older cached data set is generated again. */
const DATA_LAYOUT = 'monthly-settled-1';
const { values } = parseArgs({ options: { gib: { type: 'string', default: '1.1' }, keep: { type: 'boolean', default: false } } });
const targetBytes = Number(values.gib) * 1024 * MiB;

/** The server's metrics, as `name{labels}` → value. */
async function vmMetrics(vm: Vm): Promise<Map<string, number>> {
  const res = await request(`${vm.url}/metrics`);
  const text = await res.body.text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/**
 * Waits until VictoriaMetrics' storage is at rest: no active merge, no in-memory part (everything
 * flushed to files), and the same part counts for 5 s. Then a snapshot taken now and one taken a
 * little later hold the same files.
 */
async function waitSettled(vm: Vm, what: string): Promise<number> {
  const started = Date.now();
  let last = '';
  let stableSince = Date.now();
  for (;;) {
    const m = await vmMetrics(vm);
    let active = 0;
    let inmemory = 0;
    const parts: string[] = [];
    for (const [k, v] of m) {
      if (k.startsWith('vm_active_merges{')) active += v;
      if (k.startsWith('vm_parts{')) {
        parts.push(`${k}=${v}`);
        if (k.includes('inmemory')) inmemory += v;
      }
      if (k.startsWith('vm_pending_rows{')) inmemory += v;
    }
    const state = parts.sort().join(',');
    if (state !== last) {
      last = state;
      stableSince = Date.now();
    }
    if (active === 0 && inmemory === 0 && Date.now() - stableSince >= 5000) return (Date.now() - started) / 1000;
    if (Date.now() - started > 30 * 60_000) throw new Error(`VictoriaMetrics did not settle (${what}) within 30 min: ${state}, ${active} active merges`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The part directories under data/ (partition/part → bytes), to check that both tools saw the same files. */
async function partDirs(dataDir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const walk = async (dir: string, depth: number, rel: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (!e.isDirectory() || e.name === 'snapshots' || e.name === 'tmp' || e.name === 'txn') continue;
      const path = join(dir, e.name);
      if (depth === 0) {
        let bytes = 0;
        for (const f of await readdir(path, { withFileTypes: true })) if (f.isFile()) bytes += statSync(join(path, f.name)).size;
        out.set(`${rel}${e.name}`, bytes);
      } else await walk(path, depth - 1, `${rel}${e.name}/`);
    }
  };
  // data/{small,big}/<month>/<part>, data/indexdb/<generation>/<part>
  await walk(join(dataDir, 'data'), 2, '');
  return out;
}

function sameParts(a: Map<string, number>, b: Map<string, number>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
}

/** The 20th of the month `back` months before the current one, 12:00 UTC. */
function monthEnd(back: number): number {
  const now = new Date();
  return Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - back, 20, 12);
}

/** The shared data set: generated once (one month partition per round), settled, reused by later runs. */
async function dataSet(): Promise<string> {
  const dir = join(CACHE, 'bench', 'vm145-data');
  if (existsSync(join(dir, 'generated.json'))) {
    const info = JSON.parse(readFileSync(join(dir, 'generated.json'), 'utf8')) as { bytes: number; layout?: string };
    if (info.bytes >= targetBytes && info.layout === DATA_LAYOUT) return dir;
  }
  await generateData(
    dir,
    targetBytes,
    // Months 1, 2, … back: the current month stays free for the incremental step's new data.
    (vm, round) => importRandom(vm, 'bench_random', 5000, 5000, 1000 + round, monthEnd(round + 1)),
    async (vm) => {
      process.stderr.write(`generated; waiting for VictoriaMetrics' merges to settle\n`);
      await waitSettled(vm, 'after generating');
    },
    { layout: DATA_LAYOUT },
  );
  return dir;
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
  // Our binary is copied (with its lib/): a rebuild of dist/ during the run must not pull it away.
  const plugin = join(scratch, 'bin', 'velero-plugin-victoria');
  await run('cp', ['-r', dirname(paths.plugin), join(scratch, 'bin')]);
  const moto: Moto = await startMoto({ bucket: 'bench' });
  const vm = await startVm(dataDir);
  const env = { AWS_ACCESS_KEY_ID: moto.accessKeyId, AWS_SECRET_ACCESS_KEY: moto.secretAccessKey, AWS_REGION: moto.region };
  const s3 = ['--s3-endpoint', moto.endpoint, '--checksum-algorithm', ''];
  const vmS3 = [`-customS3Endpoint=${moto.endpoint}`, '-s3ForcePathStyle'];
  const vmPort = async () => `-httpListenAddr=127.0.0.1:${await freePort()}`;
  const rows: string[][] = [];
  const ratio = (ours: number, peer: number) => `${(ours / peer).toFixed(2)}×`;
  const rate = (bytes: number, s: number) => `${(bytes / MiB / s).toFixed(1)} MiB/s`;
  const notes: string[] = [];
  try {
    await waitSettled(vm, 'at start');
    // Warm the page cache for both tools alike.
    await run('sh', ['-c', `find '${dataDir}' -type f -exec cat {} + > /dev/null`]);
    const bytes = await du(dataDir);
    type Summary = { bytesTotal: number; bytesUploaded: number; bytesCopied: number; files: number; durationSeconds: number };
    const summary = (r: Run) => JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Summary;
    // Backups without counts go to a root of their own, so that each incremental is based on its own kind of full.
    // Every timed step starts with nothing left to write back: a step must not pay for the
    // previous one's dirty pages (a restore leaves 1.3 GB of them).
    const settleDisk = () => run('sync', []);
    const oursBackup = async (name: string, counts = true) => {
      await settleDisk();
      return run(plugin, ['backup', '--kind', 'metrics', '--url', vm.url, '--data-dir', dataDir, '--dst', `s3://bench/${counts ? 'ours' : 'uncounted'}`, '--name', name, '--json', ...(counts ? [] : ['--no-counts']), ...s3], env);
    };
    const vmbackup = async (dst: string, origin?: string) => {
      await settleDisk();
      return run(paths.vmbackup145, [await vmPort(), `-storageDataPath=${dataDir}`, `-snapshot.createURL=${vm.url}/snapshot/create`, `-dst=s3://bench/vmbackup/${dst}`, ...(origin ? [`-origin=s3://bench/vmbackup/${origin}`] : []), ...vmS3], env);
    };
    /** Settles the server, then records its parts: what the next backup will see. */
    const settledParts = async (what: string) => {
      const waited = await waitSettled(vm, what);
      if (waited > 6) notes.push(`waited ${waited.toFixed(0)} s for merges to settle ${what}`);
      return partDirs(dataDir);
    };
    const uploadOnly = (r: Run, j: Summary) => `; ${j.durationSeconds.toFixed(1)} s of it uploading (and counting, beside it), ${(r.seconds - j.durationSeconds).toFixed(1)} s start, snapshot and listing`;

    // 1. Full backups.
    const fullParts = await settledParts('before our full backup');
    const oursFull = await oursBackup('full');
    const oursFullJson = summary(oursFull);
    const vmbFullParts = await settledParts("before vmbackup's full backup");
    const theirsFull = await vmbackup('full');
    if (!sameParts(fullParts, vmbFullParts)) notes.push('the full backups saw different parts (a merge ran between them)');
    const uncountedParts = await settledParts('before our full backup without counts');
    const oursUncounted = await oursBackup('full', false);
    if (!sameParts(fullParts, uncountedParts)) notes.push('the full backup without counts saw different parts (a merge ran between them)');
    for (const [step, r] of [['full backup', oursFull], ['full backup, ours with --no-counts', oursUncounted]] as const) {
      const j = summary(r);
      rows.push([
        step,
        `${(j.bytesTotal / MiB).toFixed(0)} MiB, ${j.files} files${uploadOnly(r, j)}`,
        `${r.seconds.toFixed(1)} s (${rate(j.bytesTotal, r.seconds)})`,
        `${theirsFull.seconds.toFixed(1)} s (${rate(j.bytesTotal, theirsFull.seconds)})`,
        ratio(theirsFull.seconds, r.seconds),
        `${r.peakRssMiB.toFixed(0)} MiB`,
        `${theirsFull.peakRssMiB.toFixed(0)} MiB`,
      ]);
    }

    // 2. ~5% new data (a new month partition), then incrementals of the same settled state.
    await importRandom(vm, 'bench_new', 2000, 5000, 99);
    const incrParts = await settledParts('before our incremental');
    const oursIncr = await oursBackup('incr');
    const uncountedIncrParts = await settledParts('before our incremental without counts');
    const oursIncrUncounted = await oursBackup('incr', false);
    if (!sameParts(incrParts, uncountedIncrParts)) notes.push('the incremental without counts saw different parts (a merge ran between them)');
    const vmbIncrParts = await settledParts("before vmbackup's incremental");
    const theirsIncr = await vmbackup('incr', 'full');
    if (!sameParts(incrParts, vmbIncrParts)) notes.push('the incrementals saw different parts (a merge ran between them)');
    const theirsUploaded = /uploaded (\d+) bytes/.exec(theirsIncr.stderr);
    // New on disk: part directories that were not there at the full backup (or changed size).
    let newBytes = 0;
    let newParts = 0;
    for (const [k, v] of incrParts) {
      if (fullParts.get(k) !== v) {
        newBytes += v;
        newParts++;
      }
    }
    for (const [step, r] of [['incremental (~5% new)', oursIncr], ['incremental, ours with --no-counts', oursIncrUncounted]] as const) {
      const j = summary(r);
      rows.push([
        step,
        `${newParts} new parts, ${(newBytes / MiB).toFixed(1)} MiB; uploaded: ours ${(j.bytesUploaded / MiB).toFixed(1)} MiB, vmbackup ${theirsUploaded ? (Number(theirsUploaded[1]) / MiB).toFixed(1) : '?'} MiB${uploadOnly(r, j)}`,
        `${r.seconds.toFixed(1)} s`,
        `${theirsIncr.seconds.toFixed(1)} s`,
        ratio(theirsIncr.seconds, r.seconds),
        `${r.peakRssMiB.toFixed(0)} MiB`,
        `${theirsIncr.peakRssMiB.toFixed(0)} MiB`,
      ]);
    }
    await vm.stop();

    // 3. Restores of the full backups into empty directories.
    await settleDisk();
    const oursRestore = await run(plugin, ['restore', '--src', 's3://bench/ours/full', '--data-dir', join(scratch, 'restore-ours'), '--json', ...s3], env);
    await settleDisk();
    const theirsRestore = await run(paths.vmrestore145, [await vmPort(), '-src=s3://bench/vmbackup/full', `-storageDataPath=${join(scratch, 'restore-vmrestore')}`, ...vmS3], env);
    rows.push(['restore (full)', 'ours checks every SHA-256', `${oursRestore.seconds.toFixed(1)} s (${rate(oursFullJson.bytesTotal, oursRestore.seconds)})`, `${theirsRestore.seconds.toFixed(1)} s (${rate(oursFullJson.bytesTotal, theirsRestore.seconds)})`, ratio(theirsRestore.seconds, oursRestore.seconds), `${oursRestore.peakRssMiB.toFixed(0)} MiB`, `${theirsRestore.peakRssMiB.toFixed(0)} MiB`]);

    // 4. The server's raw rates: one multipart stream up and one GET down, nothing else.
    // The same settings as the CLI with --checksum-algorithm "": no flexible checksums.
    const store = new S3Store({
      bucket: 'bench',
      prefix: 'raw',
      ...moto.s3Options,
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
    for (const n of notes) console.log(`\nNote: ${n}.`);
  } finally {
    await vm.stop().catch(() => undefined);
    await moto.stop();
    if (!values.keep) rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
