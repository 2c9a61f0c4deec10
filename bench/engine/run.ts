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
 *   node --import tsx bench/engine/run.ts [--gib 1.1] [--rounds 3] [--keep]
 *
 * Steps 1–3 run `--rounds` times each, the tools' order reversed in odd rounds; the tables give
 * every round's time and the medians. One run of each, as before 2026-11-22, put run-to-run noise
 * of ±15% (which tool ran first, moto's state) into the ratios. A round's backups are removed once
 * measured, so that the next round's full backup is a full one again (ours would otherwise find a
 * complete backup in its root and copy from it) and each incremental is based on the same full.
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
import { MiB, du, generateData, importRandom, median, run, startVm, type Run, type Vm } from '../support.js';

/** Bumped when the generator changes: an older cached data set is generated again. */
const DATA_LAYOUT = 'monthly-settled-1';
const { values } = parseArgs({
  options: { gib: { type: 'string', default: '1.1' }, rounds: { type: 'string', default: '3' }, keep: { type: 'boolean', default: false } },
});
const targetBytes = Number(values.gib) * 1024 * MiB;
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds N (≥ 1) expected');

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
    const uploadOnly = (r: Run, j: Summary, counted: boolean) =>
      `; ${j.durationSeconds.toFixed(1)} s of it uploading${counted ? ' (and counting, beside it)' : ''}, ${(r.seconds - j.durationSeconds).toFixed(1)} s start, snapshot and listing`;

    const store = (prefix: string) =>
      new S3Store({ bucket: 'bench', prefix, ...moto.s3Options, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
    /** Removes a measured backup: the next round's backup must not use it as its base, and moto keeps every object. */
    const drop = async (root: string, name: string) => {
      const s = store(root);
      const keys: string[] = [];
      for await (const o of s.list(`${name}/`)) keys.push(o.key);
      await s.delete(keys);
      s.destroy();
    };
    /** Runs the steps in this order in even rounds and in reverse in odd ones. */
    const alternate = async <T>(round: number, steps: Array<() => Promise<T>>): Promise<T[]> => {
      const order = steps.map((_, i) => i);
      if (round % 2 === 1) order.reverse();
      const out: T[] = [];
      for (const i of order) out[i] = await steps[i]!();
      return out;
    };
    const secs = (rs: Run[]) => `${rs.map((r) => r.seconds.toFixed(1)).join(', ')}; median ${median(rs.map((r) => r.seconds)).toFixed(1)} s`;
    /** Ratio of the medians, then each round's own. */
    const ratios = (ours: Run[], peer: Run[]) =>
      `${ratio(median(peer.map((r) => r.seconds)), median(ours.map((r) => r.seconds)))} (${ours.map((r, i) => (peer[i]!.seconds / r.seconds).toFixed(2)).join(', ')})`;
    const peak = (rs: Run[]) => `${Math.max(...rs.map((r) => r.peakRssMiB)).toFixed(0)} MiB`;
    const last = rounds - 1;

    // 1. Full backups, one of each per round. Each round's go to names of their own and are removed
    // after it, except the last round's, which the incrementals and restores use.
    const fullParts = await settledParts('before the first full backup');
    /** Settles the server, checks that `what` will see the parts `first` recorded, then runs it. */
    const atRest = async (first: Map<string, number>, what: string, step: () => Promise<Run>) => {
      if (!sameParts(first, await settledParts(`before ${what}`))) notes.push(`${what} saw other parts than the first of its kind (a merge ran in between)`);
      return step();
    };
    const full: Record<'ours' | 'uncounted' | 'vmbackup', Run[]> = { ours: [], uncounted: [], vmbackup: [] };
    for (let round = 0; round < rounds; round++) {
      const [o, v, u] = await alternate(round, [
        () => atRest(fullParts, `our full backup ${round}`, () => oursBackup(`full-${round}`)),
        () => atRest(fullParts, `vmbackup's full backup ${round}`, () => vmbackup(`full-${round}`)),
        () => atRest(fullParts, `our full backup ${round} without counts`, () => oursBackup(`full-${round}`, false)),
      ]);
      full.ours.push(o!);
      full.vmbackup.push(v!);
      full.uncounted.push(u!);
      if (round < last) for (const root of ['ours', 'uncounted', 'vmbackup']) await drop(root, `full-${round}`);
    }
    const oursFullJson = summary(full.ours[last]!);
    for (const [step, rs, counted] of [['full backup (as shipped: counts)', full.ours, true], ['full backup, ours with --no-counts', full.uncounted, false]] as const) {
      const j = summary(rs[last]!);
      rows.push([
        step,
        `${(j.bytesTotal / MiB).toFixed(0)} MiB, ${j.files} files${uploadOnly(rs[last]!, j, counted)}`,
        `${secs(rs)} (${rate(j.bytesTotal, median(rs.map((r) => r.seconds)))})`,
        secs(full.vmbackup),
        ratios(rs, full.vmbackup),
        peak(rs),
        peak(full.vmbackup),
      ]);
    }

    // 2. ~5% new data (a new month partition), then incrementals of the same settled state, each
    // based on the last round's full backup (ours: the newest complete one in its root; vmbackup:
    // -origin) and removed after its round.
    await importRandom(vm, 'bench_new', 2000, 5000, 99);
    const incrParts = await settledParts('before the first incremental');
    const incr: Record<'ours' | 'uncounted' | 'vmbackup', Run[]> = { ours: [], uncounted: [], vmbackup: [] };
    for (let round = 0; round < rounds; round++) {
      const [o, v, u] = await alternate(round, [
        () => atRest(incrParts, `our incremental ${round}`, () => oursBackup(`incr-${round}`)),
        () => atRest(incrParts, `vmbackup's incremental ${round}`, () => vmbackup(`incr-${round}`, `full-${last}`)),
        () => atRest(incrParts, `our incremental ${round} without counts`, () => oursBackup(`incr-${round}`, false)),
      ]);
      incr.ours.push(o!);
      incr.vmbackup.push(v!);
      incr.uncounted.push(u!);
      for (const root of ['ours', 'uncounted', 'vmbackup']) await drop(root, `incr-${round}`);
    }
    const theirsUploaded = /uploaded (\d+) bytes/.exec(incr.vmbackup[last]!.stderr);
    // New on disk: part directories that were not there at the full backup (or changed size).
    let newBytes = 0;
    let newParts = 0;
    for (const [k, v] of incrParts) {
      if (fullParts.get(k) !== v) {
        newBytes += v;
        newParts++;
      }
    }
    for (const [step, rs, counted] of [['incremental (~5% new; counts)', incr.ours, true], ['incremental, ours with --no-counts', incr.uncounted, false]] as const) {
      const j = summary(rs[last]!);
      rows.push([
        step,
        `${newParts} new parts, ${(newBytes / MiB).toFixed(1)} MiB; uploaded: ours ${(j.bytesUploaded / MiB).toFixed(1)} MiB, vmbackup ${theirsUploaded ? (Number(theirsUploaded[1]) / MiB).toFixed(1) : '?'} MiB${uploadOnly(rs[last]!, j, counted)}`,
        secs(rs),
        secs(incr.vmbackup),
        ratios(rs, incr.vmbackup),
        peak(rs),
        peak(incr.vmbackup),
      ]);
    }
    await vm.stop();

    // 3. Restores of the last full backups into empty directories, one of each per round.
    const restores: Record<'ours' | 'vmrestore', Run[]> = { ours: [], vmrestore: [] };
    for (let round = 0; round < rounds; round++) {
      const into = (who: string) => join(scratch, `restore-${who}-${round}`);
      const [o, v] = await alternate(round, [
        async () => {
          await settleDisk();
          return run(plugin, ['restore', '--src', `s3://bench/ours/full-${last}`, '--data-dir', into('ours'), '--json', ...s3], env);
        },
        async () => {
          await settleDisk();
          return run(paths.vmrestore145, [await vmPort(), `-src=s3://bench/vmbackup/full-${last}`, `-storageDataPath=${into('vmrestore')}`, ...vmS3], env);
        },
      ]);
      restores.ours.push(o!);
      restores.vmrestore.push(v!);
      for (const who of ['ours', 'vmrestore']) rmSync(into(who), { recursive: true, force: true });
    }
    const restoreMedian = (rs: Run[]) => rate(oursFullJson.bytesTotal, median(rs.map((r) => r.seconds)));
    rows.push([
      'restore (full)',
      'ours checks every SHA-256',
      `${secs(restores.ours)} (${restoreMedian(restores.ours)})`,
      `${secs(restores.vmrestore)} (${restoreMedian(restores.vmrestore)})`,
      ratios(restores.ours, restores.vmrestore),
      peak(restores.ours),
      peak(restores.vmrestore),
    ]);

    // 4. The server's raw rates: one multipart stream up and one GET down, nothing else.
    // The same settings as the CLI with --checksum-algorithm "": no flexible checksums.
    const raw = store('raw');
    const rawSize = 512 * MiB;
    const chunk = Buffer.alloc(MiB, 7);
    let t = process.hrtime.bigint();
    await raw.put('blob', Readable.from((function* () { for (let i = 0; i < rawSize / MiB; i++) yield chunk; })()), rawSize);
    const upS = Number(process.hrtime.bigint() - t) / 1e9;
    t = process.hrtime.bigint();
    for await (const _ of await raw.get('blob')) void _;
    const downS = Number(process.hrtime.bigint() - t) / 1e9;
    raw.destroy();

    const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
    console.log(`\n${when} UTC, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, load ${loadavg()[0]!.toFixed(1)}; data ${(bytes / MiB).toFixed(0)} MiB (VictoriaMetrics 1.145), moto 5.2.4 (auth) on loopback; ${rounds} round(s), the order reversed in odd rounds\n`);
    console.log('| step | data (last round) | ours: seconds per round; median | vmbackup / vmrestore 1.145: seconds per round; median | speed ratio (peer time / ours): of the medians (per round) | ours peak RSS (max) | peer peak RSS (max) |');
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
