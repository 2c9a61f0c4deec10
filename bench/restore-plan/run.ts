/**
 * Restore through a restore plan (the init container's path: presigned URLs, no credentials) against
 * vmrestore 1.145, on the same backup and the same S3 server (moto in no-auth mode on loopback: in
 * auth mode moto answers presigned URLs with 500):
 *
 *   1. one full backup of bench/engine's data set with our CLI (flexible checksums off);
 *   2. a restore plan built in-process exactly as the restore action builds it (buildRestorePlan on
 *      an S3Store at the backup root, s3Presigner for the URLs), written into the bucket, its own
 *      URL presigned;
 *   3. timed restores into empty directories, with peak RSS:
 *      (a) `restore --plan-url URL --plan-sha256 HEX` (every file's SHA-256 checked),
 *      (b) `vmrestore -src=s3://bench/ours/full` (stock vmrestore reads our backup),
 *      (c) `restore --src s3://bench/ours/full` (credentials; for reference),
 *      (d) (a) with `--no-direct-io` (writes through the page cache: what O_DIRECT saves),
 *      in alternating order over `--rounds` rounds (default 2; the table gives every round and the
 *      median; the load varies on a shared machine); (a) and (b) must restore the same
 *      files with the same sizes.
 *
 *   node --import tsx bench/restore-plan/run.ts [--rounds 2] [--keep]
 *
 * The data set is bench/engine/run.ts's (.cache/bench/vm145-data): run that first. Prints a
 * Markdown table; docs/benchmarks.md records results.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { buildRestorePlan } from '../../src/engine/plan.js';
import { s3Presigner } from '../../src/store/s3-presign.js';
import { S3Store } from '../../src/store/s3.js';
import { freePort } from '../../src/victoria/local-server.js';
import { CACHE, paths } from '../../test/support/components.js';
import { startMoto, type Moto } from '../../test/support/moto.js';
import { MiB, du, median, run, startVm, type Run, type Vm } from '../support.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '2' }, keep: { type: 'boolean', default: false } } });
const rounds = Number(values.rounds);

/** Every regular file under `dir` (relative path → size). */
async function files(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const path = join(e.parentPath, e.name);
    out.set(relative(dir, path), statSync(path).size);
  }
  return out;
}

function diff(a: Map<string, number>, b: Map<string, number>): string[] {
  const out: string[] = [];
  for (const [k, v] of a) if (b.get(k) !== v) out.push(`${k}: ${v} vs ${b.get(k) ?? 'missing'}`);
  for (const k of b.keys()) if (!a.has(k)) out.push(`${k}: missing vs ${b.get(k)}`);
  return out;
}

async function main(): Promise<void> {
  for (const f of [paths.plugin, paths.vm145, paths.vmrestore145, paths.motoServer]) {
    if (!existsSync(f)) throw new Error(`missing ${f}: run scripts/test.sh (or scripts/test-deps.sh vm moto and bash scripts/build.sh) first`);
  }
  const source = join(CACHE, 'bench', 'vm145-data');
  if (!existsSync(join(source, 'generated.json'))) throw new Error(`missing the data set ${source}: run \`node --import tsx bench/engine/run.ts\` first (it generates it)`);
  const scratch = mkdtempSync(join(CACHE, 'bench', 'restore-plan-'));
  const dataDir = join(scratch, 'data');
  await run('cp', ['-al', source, dataDir]);
  // flock.lock is hard-linked too: a server on another copy of the data set would hold our lock.
  rmSync(join(dataDir, 'flock.lock'), { force: true });
  // Our binary is copied (with its lib/): a rebuild of dist/ during the run must not pull it away.
  const plugin = join(scratch, 'bin', 'velero-plugin-victoria');
  await run('cp', ['-r', dirname(paths.plugin), join(scratch, 'bin')]);
  const moto: Moto = await startMoto({ bucket: 'bench', auth: false, presignCheck: false });
  let vm: Vm | undefined = await startVm(dataDir);
  const env = { AWS_ACCESS_KEY_ID: moto.accessKeyId, AWS_SECRET_ACCESS_KEY: moto.secretAccessKey, AWS_REGION: moto.region };
  const s3 = ['--s3-endpoint', moto.endpoint, '--checksum-algorithm', ''];
  try {
    // 1. One full backup with our CLI.
    const backup = await run(plugin, ['backup', '--kind', 'metrics', '--url', vm.url, '--data-dir', dataDir, '--dst', 's3://bench/ours', '--name', 'full', '--json', ...s3], env);
    const summary = JSON.parse(backup.stdout.trim().split('\n').at(-1)!) as { bytesTotal: number; files: number };
    await vm.stop();
    vm = undefined;
    const bytes = summary.bytesTotal;

    // 2. The plan, as the restore action makes it (actions/restore-plan.ts).
    const store = new S3Store({
      bucket: 'bench',
      prefix: 'ours',
      ...moto.s3Options,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const presigner = s3Presigner(store);
    let t = process.hrtime.bigint();
    const built = await buildRestorePlan({ store, backupName: 'full', restore: 'bench-restore', expiresInSeconds: 3600, presign: (key, s) => presigner.presign(key, s) });
    const planKey = '_restore-plans/bench-restore/bench.vm-0.json';
    await store.put(planKey, built.bytes, built.bytes.length);
    const planUrl = await presigner.presign(planKey, 3600);
    const planSeconds = Number(process.hrtime.bigint() - t) / 1e9;
    presigner.destroy();
    store.destroy();
    const planObjects = Object.keys(built.plan.objects).length;

    // 3. Restores, in alternating order.
    type Mode = 'plan' | 'vmrestore' | 'src' | 'buffered';
    const restore = async (mode: Mode, dir: string): Promise<Run> => {
      if (mode === 'plan' || mode === 'buffered') {
        return run(plugin, ['restore', '--plan-url', planUrl, '--plan-sha256', built.sha256, '--data-dir', dir, '--json', ...(mode === 'buffered' ? ['--no-direct-io'] : [])], {});
      }
      if (mode === 'src') return run(plugin, ['restore', '--src', 's3://bench/ours/full', '--data-dir', dir, '--json', ...s3], env);
      return run(paths.vmrestore145, [`-httpListenAddr=127.0.0.1:${await freePort()}`, '-src=s3://bench/ours/full', `-storageDataPath=${dir}`, `-customS3Endpoint=${moto.endpoint}`, '-s3ForcePathStyle'], env);
    };
    const results: Record<Mode, Run[]> = { plan: [], vmrestore: [], src: [], buffered: [] };
    const orders: Mode[][] = [
      ['plan', 'vmrestore', 'src', 'buffered'],
      ['buffered', 'src', 'vmrestore', 'plan'],
    ];
    const notes: string[] = [];
    for (let r = 0; r < rounds; r++) {
      const order = orders[r % 2]!;
      for (const mode of order) {
        const dir = join(scratch, `restore-${mode}`);
        rmSync(dir, { recursive: true, force: true });
        // Nothing left to write back from the previous restore (1.3 GB of dirty pages).
        await run('sync', []);
        const res = await restore(mode, dir);
        results[mode].push(res);
        process.stderr.write(`round ${r + 1}: ${mode} ${res.seconds.toFixed(1)} s, peak RSS ${res.peakRssMiB.toFixed(0)} MiB, load ${loadavg()[0]!.toFixed(1)}\n`);
      }
      // Every round: (a) and (b) restored the same files (vmrestore leaves its flock.lock, 0 bytes).
      const [a, b, c, d] = await Promise.all(['plan', 'vmrestore', 'src', 'buffered'].map((m) => files(join(scratch, `restore-${m}`))));
      b!.delete('flock.lock');
      const ab = diff(a!, b!);
      const ac = [...diff(a!, c!), ...diff(a!, d!)];
      if (ab.length) notes.push(`round ${r + 1}: plan restore and vmrestore differ in ${ab.length} file(s), e.g. ${ab.slice(0, 5).join('; ')}`);
      else if (r === 0) notes.push(`plan restore and vmrestore restored the same ${a!.size} files (${[...a!.values()].reduce((s, v) => s + v, 0)} bytes; same paths and sizes, checked every round; vmrestore also leaves an empty flock.lock)`);
      if (ac.length) notes.push(`round ${r + 1}: the plan restore and the --src or --no-direct-io restore differ in ${ac.length} file(s), e.g. ${ac.slice(0, 5).join('; ')}`);
    }
    // What our checksums cost, for scale: node:crypto's SHA-256 (OpenSSL) over 256 MiB in memory, one
    // core. (Hashing the restored files from disk would time the disk: O_DIRECT left them uncached.)
    const block = Buffer.alloc(256 * 1024, 7);
    const hasher = createHash('sha256');
    const hashStart = process.hrtime.bigint();
    for (let i = 0; i < 1024; i++) hasher.update(block);
    hasher.digest();
    const hashMiBs = 256 / (Number(process.hrtime.bigint() - hashStart) / 1e9);

    const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
    const dataBytes = await du(source);
    console.log(`\n${when} UTC, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, load ${loadavg().map((l) => l.toFixed(1)).join(' / ')}; data ${(dataBytes / MiB).toFixed(0)} MiB (VictoriaMetrics 1.145), backup ${(bytes / MiB).toFixed(0)} MiB in ${summary.files} files, moto 5.2.4 (no-auth) on loopback\n`);
    console.log(`Backup (ours, once): ${backup.seconds.toFixed(1)} s. Plan: ${planObjects} presigned objects, ${(built.bytes.length / 1024).toFixed(0)} KiB of JSON, built, written and presigned in ${planSeconds.toFixed(2)} s.\n`);
    const label: Record<Mode, string> = {
      plan: 'ours, `restore --plan-url` (init container; every SHA-256 checked)',
      vmrestore: 'vmrestore 1.145 (`-src=s3://…/ours/full`)',
      src: 'ours, `restore --src` (credentials; every SHA-256 checked)',
      buffered: 'ours, `restore --plan-url --no-direct-io` (writes through the page cache)',
    };
    const med = (mode: Mode) => median(results[mode].map((x) => x.seconds));
    console.log(`| restore of the same backup | seconds per round | median | MiB/s (median) | ratio vmrestore / this (median; per round) | peak RSS (max) |`);
    console.log('|---|---|---|---|---|---|');
    for (const mode of ['plan', 'vmrestore', 'src', 'buffered'] as Mode[]) {
      const rs = results[mode];
      const perRound = rs.map((x, r) => `${(results.vmrestore[r]!.seconds / x.seconds).toFixed(2)}`).join(', ');
      console.log(
        `| ${label[mode]} | ${rs.map((x) => x.seconds.toFixed(1)).join(', ')} | ${med(mode).toFixed(1)} s | ${(bytes / MiB / med(mode)).toFixed(1)} | ${(med('vmrestore') / med(mode)).toFixed(2)}× (${perRound}) | ${Math.max(...rs.map((x) => x.peakRssMiB)).toFixed(0)} MiB |`,
      );
    }
    console.log(`\nFor scale: our SHA-256 (node:crypto) hashes ${hashMiBs.toFixed(0)} MiB/s on one core here, so the checksums of this restore cost about ${(bytes / MiB / hashMiBs).toFixed(1)} s of CPU.`);
    for (const n of notes) console.log(`\nNote: ${n}.`);
  } finally {
    await vm?.stop().catch(() => undefined);
    await moto.stop();
    if (!values.keep) rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
