/**
 * The companion sidecar against real servers: VictoriaMetrics 1.145 and 1.79.5 and the VictoriaLogs
 * test server. Most calls are in-process; the real CLI entry (`tsx src/main.ts companion …`) runs
 * for the hooks, files and tar, and `serve` runs from esbuild bundles (as in the image's executable)
 * so that its idle memory is measured without tsx's own. The built executable also runs as the
 * plugin execs it through the API stand-in, to show that a plugin that goes away stops its count
 * and its tar in the pod, and that an older plugin's requests are served as before.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { extract } from 'tar-stream';
import { CompanionClient } from '../../src/actions/companion-client.js';
import { EXECUTABLE } from '../../src/actions/names.js';
import { parseCompanionConfig, type CompanionConfig } from '../../src/companion/config.js';
import { CompanionError } from '../../src/companion/errors.js';
import { countsDocument } from '../../src/companion/counts.js';
import { filesDocument } from '../../src/companion/files.js';
import { postHook, preHook } from '../../src/companion/hooks.js';
import { COMPANION_EXIT, COUNTS_CANCEL_LINE, formatTarRequest, parseCompanionCounts, parseCompanionFiles, type CompanionFiles } from '../../src/companion/protocol.js';
import { expireRecorded } from '../../src/companion/serve.js';
import { readRecord } from '../../src/companion/state.js';
import { writeTar } from '../../src/companion/tar.js';
import { listSnapshotFiles } from '../../src/engine/files.js';
import { KubeClient } from '../../src/kube/client.js';
import { ExecError } from '../../src/kube/errors.js';
import { execInPod } from '../../src/kube/exec.js';
import { LogsSource, MetricsSource, type Snapshot } from '../../src/victoria/index.js';
import { LATE_DATA_MARGIN_MS } from '../../src/victoria/flat-counts.js';
import { freePort } from '../../src/victoria/local-server.js';
import { paths, requireComponents, ROOT } from '../support/components.js';
import { makePod, startKubeApi, V5, type ExecRecord, type KubeApiServer } from '../support/kube-api.js';
import { startLoopbackServer } from '../support/loopback-server.js';
import { startVictoriaMetrics, type VmServer } from '../support/victoria-metrics.js';
import { startVictoriaLogs, type VlServer } from '../support/victorialogs.js';

const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const ESBUILD = join(ROOT, 'node_modules', '.bin', 'esbuild');

interface RunResult {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Our variables only: nothing inherited from the developer's shell may change a test. */
function cleanEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const base = { ...process.env };
  for (const k of Object.keys(base)) if (k.startsWith('VICTORIA_') || k.startsWith('COMPANION_')) delete base[k];
  return { ...base, ...env };
}

/**
 * Runs the real CLI entry. With `stdin`, writes it and leaves stdin open, as Kubernetes' v4 exec
 * protocol does: the command must finish without seeing the end of its input.
 */
async function cli(args: string[], env: NodeJS.ProcessEnv, stdin?: string): Promise<RunResult> {
  const child = spawn(TSX, [join(ROOT, 'src', 'main.ts'), 'companion', ...args], { cwd: ROOT, env: cleanEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.on('error', () => undefined); // the command may exit before reading it all
  if (stdin !== undefined) child.stdin.write(stdin);
  const [status] = (await once(child, 'close')) as [number | null];
  return { status, stdout: Buffer.concat(out), stderr };
}

const lastJsonLine = (r: RunResult): Record<string, unknown> => JSON.parse(r.stdout.toString().trim().split('\n').at(-1)!) as Record<string, unknown>;

interface Entry {
  name: string;
  data: Buffer;
}

async function untar(bytes: Buffer): Promise<Entry[]> {
  const ex = extract();
  const entries: Entry[] = [];
  const done = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      entries.push({ name: entry.header.name, data: Buffer.concat(chunks) });
    }
  })();
  ex.end(bytes);
  await done;
  return entries;
}

/** Every third file and the largest: a subset in an order that is not the listing's. */
function chooseSubset(files: CompanionFiles['trees'][number]['files']): string[] {
  const largest = files.reduce((a, b) => (b.size > a.size ? b : a));
  const picked = files.filter((_, i) => i % 3 === 1).map((f) => f.path);
  return [largest.path, ...picked.filter((p) => p !== largest.path).reverse()];
}

async function expectSameBytes(entries: Entry[], wanted: string[], root: string): Promise<void> {
  expect(entries.map((e) => e.name)).to.deep.equal(wanted);
  for (const e of entries) expect(e.data.equals(await readFile(join(root, e.name))), e.name).to.equal(true);
}

async function inProcessTar(config: CompanionConfig, tree: string, files: string[]): Promise<Entry[]> {
  const stdin = new PassThrough();
  stdin.write(formatTarRequest({ tree, files }));
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await writeTar(config, stdin, out);
  return untar(Buffer.concat(chunks));
}

async function companionError(p: Promise<unknown>): Promise<CompanionError | Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  return expect.fail('expected an error');
}

/** An esbuild bundle made as scripts/build.sh makes the executable's, run with plain Node. */
async function bundle(entry: string, outfile: string): Promise<string> {
  const child = spawn(
    ESBUILD,
    [
      entry,
      '--bundle',
      '--platform=node',
      '--format=cjs',
      '--target=node22',
      `--outfile=${outfile}`,
      '--log-level=warning',
      '--define:import.meta.url=__import_meta_url',
      '--banner:js=const __import_meta_url = require("node:url").pathToFileURL(__filename).href;',
    ],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [status] = (await once(child, 'close')) as [number | null];
  if (status !== 0) throw new Error(`esbuild failed: ${stderr}`);
  return outfile;
}

describe('companion against VictoriaMetrics 1.145', function () {
  let vm: VmServer;
  let stateDir: string;
  let env: NodeJS.ProcessEnv;
  let config: CompanionConfig;
  let admin: MetricsSource;
  let foreign: Snapshot;

  before(async function () {
    vm = await startVictoriaMetrics(this, { version: '1.145', snapshotAuthKey: 'snap-key-145' });
    await vm.importSeries(20, 100);
    stateDir = mkdtempSync(join(tmpdir(), 'companion-state-'));
    env = { VICTORIA_KIND: 'metrics', VICTORIA_URL: vm.url, VICTORIA_DATA_DIR: vm.dataDir, VICTORIA_AUTH_KEY: 'snap-key-145', COMPANION_STATE_DIR: stateDir };
    config = parseCompanionConfig([], env);
    admin = new MetricsSource({ url: vm.url, authKey: 'snap-key-145' });
  });
  after(async () => {
    await vm?.stop();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  const names = async (): Promise<string[]> => (await admin.list()).map((s) => s.name);

  it('hook pre (real CLI) snapshots and records; one JSON line on stdout', async () => {
    const r = await cli(['hook', 'pre'], env);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.toString().trim().split('\n')).to.have.length(1);
    const out = lastJsonLine(r);
    expect(out).to.include({ hook: 'pre', kind: 'metrics' });
    expect(out.staleRemoved).to.deep.equal([]);
    expect(out.durationSeconds).to.be.a('number');
    const made = out.snapshots as string[];
    expect(made).to.have.length(1);
    expect(await names()).to.deep.equal(made);
    const record = await readRecord(stateDir);
    expect(record?.snapshots.map((s) => s.name)).to.deep.equal(made);
    // Debian's build reports no version (src/victoria/version.ts); when there is one, it is recorded.
    expect(record?.version === undefined || /^v1\.145\./.test(record.version), String(record?.version)).to.equal(true);
  });

  it('counts (real CLI) counts the data before the recorded snapshot time; one JSON line', async () => {
    const record = (await readRecord(stateDir))!;
    const r = await cli(['counts'], env);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.toString().trim().split('\n')).to.have.length(1);
    const doc = parseCompanionCounts(r.stdout.toString());
    expect(doc.counts).to.deep.equal({ series: 20, samples: 2000 });
    // Five minutes before the snapshot: data stamped later may arrive after it (flat-counts.ts).
    expect(Date.parse(record.createdAt) - Date.parse(doc.countedBefore)).to.equal(LATE_DATA_MARGIN_MS);
    expect(doc.durationSeconds).to.be.a('number');
  });

  it('hook pre again deletes the unfinished run\'s snapshot, never one someone else made', async () => {
    foreign = (await admin.create())[0]!;
    const first = (await readRecord(stateDir))!.snapshots.map((s) => s.name);
    const r = await preHook(config);
    expect(r.staleRemoved).to.deep.equal(first);
    const now = await names();
    expect(now).to.include(foreign.name);
    expect(now).to.include.members(r.snapshots);
    expect(now).not.to.include.members(first);
    expect(now).to.have.length(2);
  });

  it('files lists exactly what listSnapshotFiles lists (in-process and through the CLI)', async () => {
    const record = (await readRecord(stateDir))!;
    const doc = await filesDocument(config);
    expect(doc).to.deep.include({ kind: 'metrics', snapshots: record.snapshots.map((s) => s.name), createdAt: record.createdAt, url: vm.url });
    expect(doc.trees).to.have.length(1);
    expect(doc.trees[0]).to.deep.equal({ prefix: '', restoreTo: '', files: await listSnapshotFiles(join(vm.dataDir, record.snapshots[0]!.dir)), snapshot: record.snapshots[0]!.name });
    expect(doc.trees[0]!.files.some((f) => f.path.startsWith('data/small/')), 'files found through the snapshot symlinks').to.equal(true);

    const r = await cli(['files'], env);
    expect(r.status, r.stderr).to.equal(0);
    expect(parseCompanionFiles(r.stdout.toString())).to.deep.equal(doc);
  });

  it('tar (real CLI, stdin left open) streams a chosen subset with identical bytes', async () => {
    const record = (await readRecord(stateDir))!;
    const doc = await filesDocument(config);
    const wanted = chooseSubset(doc.trees[0]!.files);
    const inUse = join(stateDir, 'in-use');
    rmSync(inUse, { force: true });
    const r = await cli(['tar'], env, formatTarRequest({ tree: '', files: wanted }));
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.equal('');
    await expectSameBytes(await untar(r.stdout), wanted, join(vm.dataDir, record.snapshots[0]!.dir));
    // serve ages the set from its last use, so a backup still reading it keeps it.
    expect(Date.now() - statSync(inUse).mtimeMs, 'tar noted that a backup reads the set').to.be.lessThan(60_000);
  });

  it('tar with a path outside the recorded set exits 2 and writes no tar', async () => {
    const doc = await filesDocument(config);
    const r = await cli(['tar'], env, formatTarRequest({ tree: '', files: [doc.trees[0]!.files[0]!.path, 'data/small/no-such-part/index.bin'] }));
    expect(r.status).to.equal(COMPANION_EXIT.usage);
    expect(r.stderr).to.include('"data/small/no-such-part/index.bin" is not a file of tree "" ');
    expect(r.stdout.length).to.equal(0);
  });

  it('hook post deletes exactly the recorded snapshots and is idempotent', async () => {
    const recorded = (await readRecord(stateDir))!.snapshots.map((s) => s.name);
    expect(await postHook(config)).to.deep.equal({ hook: 'post', deleted: recorded });
    expect(await names()).to.deep.equal([foreign.name]);
    expect(await readRecord(stateDir)).to.equal(undefined);
    const again = await cli(['hook', 'post'], env);
    expect(again.status, again.stderr).to.equal(0);
    expect(lastJsonLine(again)).to.deep.equal({ hook: 'post', deleted: [] });
    await admin.delete([foreign]);
  });

  it('files and counts without a record exit 3 and say to run hook pre', async () => {
    for (const command of ['files', 'counts']) {
      const r = await cli([command], env);
      expect(r.status, command).to.equal(COMPANION_EXIT.noRecord);
      expect(r.stderr).to.include('no snapshot recorded: run `companion hook pre` first');
      expect(r.stdout.length).to.equal(0);
    }
  });

  it('a wrong or missing auth key fails clearly, names VICTORIA_AUTH_KEY, never prints the key, leaves nothing behind', async () => {
    const wrong = await cli(['hook', 'pre'], { ...env, VICTORIA_AUTH_KEY: 'wrong-key-4711' });
    expect(wrong.status).to.equal(COMPANION_EXIT.failed);
    const out = lastJsonLine(wrong);
    expect(out.hook).to.equal('pre');
    expect(out.error).to.include(`${vm.url}/snapshot/create`).and.include('-snapshotAuthKey does not match').and.include('VICTORIA_AUTH_KEY');
    expect(wrong.stderr).to.include('VICTORIA_AUTH_KEY');
    expect(wrong.stdout.toString() + wrong.stderr).not.to.include('wrong-key-4711');

    const missing = await cli(['hook', 'pre'], { ...env, VICTORIA_AUTH_KEY: '' });
    expect(missing.status).to.equal(COMPANION_EXIT.failed);
    expect(lastJsonLine(missing).error).to.include('the server requires -snapshotAuthKey: pass its value with VICTORIA_AUTH_KEY');

    expect(await names()).to.deep.equal([]);
    expect(await readRecord(stateDir)).to.equal(undefined);
  });

  it('a data directory that is not the database\'s fails hook pre at once (exit 2), naming VICTORIA_DATA_DIR, and deletes the snapshot', async () => {
    const wrongDir = mkdtempSync(join(tmpdir(), 'not-the-data-'));
    const r = await cli(['hook', 'pre'], { ...env, VICTORIA_DATA_DIR: wrongDir });
    expect(r.status).to.equal(COMPANION_EXIT.usage);
    expect(lastJsonLine(r).error).to.match(new RegExp(`was made but is not at ${wrongDir}/snapshots/\\S+: --data-dir / VICTORIA_DATA_DIR \\(${wrongDir}\\) is not where the database's data volume`));
    expect(await names()).to.deep.equal([]);
    expect(await readRecord(stateDir)).to.equal(undefined);
  });

  it('a record made on another server (a changed VICTORIA_URL or VICTORIA_KIND) stops the hooks; nothing is dropped or left untracked', async () => {
    const pre = await cli(['hook', 'pre'], env);
    expect(pre.status, pre.stderr).to.equal(0);
    const made = lastJsonLine(pre).snapshots as string[];
    const other = `http://127.0.0.1:${await freePort()}`;
    for (const [change, hook] of [[{ VICTORIA_URL: other }, 'post'], [{ VICTORIA_URL: other }, 'pre'], [{ VICTORIA_KIND: 'logs', VICTORIA_URL: other }, 'post']] as const) {
      const r = await cli(['hook', hook], { ...env, ...change });
      expect(r.status, `${hook} ${JSON.stringify(change)}`).to.equal(COMPANION_EXIT.usage);
      expect(lastJsonLine(r).error).to.include(`made at ${vm.url}, but this companion is configured for`).and.include('VICTORIA_URL');
      expect(await names(), 'the snapshot stays where it was made').to.deep.equal(made);
      expect((await readRecord(stateDir))?.snapshots.map((s) => s.name), 'the record stays').to.deep.equal(made);
    }
    const post = await cli(['hook', 'post'], env);
    expect(lastJsonLine(post)).to.deep.equal({ hook: 'post', deleted: made });
    expect(await names()).to.deep.equal([]);
  });

  describe('serve (bundled)', () => {
    let work: string;
    let executable: string;
    let companionOnly: string;

    before(async function () {
      requireComponents(this, paths.node);
      work = mkdtempSync(join(tmpdir(), 'companion-serve-'));
      // The whole executable, and an entry that loads the companion alone (what the sidecar costs
      // when the entry point does not evaluate the plugin's Kubernetes, S3 and gRPC code).
      const entry = join(work, 'companion-entry.ts');
      writeFileSync(entry, `import { companionCommand } from ${JSON.stringify(join(ROOT, 'src', 'companion', 'index.ts'))};\nvoid companionCommand(process.argv.slice(2)).then((code) => { process.exitCode = code; });\n`);
      [executable, companionOnly] = await Promise.all([bundle(join(ROOT, 'src', 'main.ts'), join(work, 'main.cjs')), bundle(entry, join(work, 'companion.cjs'))]);
    });
    after(() => work && rmSync(work, { recursive: true, force: true }));

    /** Starts `serve`; `until` waits for a log line. */
    function startServe(args: string[]) {
      const child = spawn(paths.node, [...args, '--max-snapshot-age', '2s'], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      return {
        child,
        output: () => stdout + stderr,
        async until(re: RegExp): Promise<void> {
          const deadline = Date.now() + 20_000;
          while (!re.test(stdout)) {
            if (Date.now() > deadline || child.exitCode !== null) expect.fail(`serve never logged ${re}:\n${stdout}\n${stderr}`);
            await sleep(100);
          }
        },
        /** VmRSS after a few idle seconds, in MiB. */
        async idleRssMiB(): Promise<number> {
          await sleep(3000);
          return Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024;
        },
        /** SIGTERM; the exit code and how long the exit took. */
        async terminate(): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
          const sent = Date.now();
          child.kill('SIGTERM');
          const [code, signal] = await exited;
          return { code, signal, ms: Date.now() - sent };
        },
      };
    }

    it('the executable expires a set whose post hook never ran, and exits 0 on SIGTERM within 5 s', async () => {
      const pre = await preHook(config);
      const serve = startServe([executable, 'companion', 'serve']);
      try {
        await serve.until(/deleted 1 recorded snapshot/);
        expect(serve.output()).to.include(pre.snapshots[0]);
        expect(await names()).to.deep.equal([]);
        expect(await readRecord(stateDir)).to.equal(undefined);
        const rss = await serve.idleRssMiB();
        console.log(`      idle RSS of the whole executable (bundled src/main.ts): ${rss.toFixed(1)} MiB`);
        // A guard against runaway growth only: the entry evaluates every role's modules (see companion-only below).
        expect(rss).to.be.lessThan(160);
        const exit = await serve.terminate();
        console.log(`      exited ${String(exit.code)} ${exit.ms} ms after SIGTERM`);
        expect({ code: exit.code, signal: exit.signal }).to.deep.equal({ code: 0, signal: null });
        // Milliseconds when idle (printed above). 5 s leaves a loaded machine room, and still catches a
        // shutdown that hangs or waits out a timer of seconds (a grace period, the default 5-minute expiry check).
        expect(exit.ms).to.be.lessThan(5000);
        expect(serve.output()).to.match(/companion serving: kind=metrics .*auth-key=set/).and.include('companion stopping');
        expect(serve.output()).not.to.include('snap-key-145');
        expect(serve.output()).not.to.include('warning: data directory');
      } finally {
        serve.child.kill('SIGKILL');
      }
    });

    it('the companion alone idles below 80 MiB and exits 0 on SIGTERM within 5 s', async () => {
      const serve = startServe([companionOnly, 'serve']);
      try {
        await serve.until(/companion serving/);
        const rss = await serve.idleRssMiB();
        console.log(`      idle RSS of companion serve alone: ${rss.toFixed(1)} MiB (Node ${process.version})`);
        expect(rss).to.be.lessThan(80);
        const exit = await serve.terminate();
        expect({ code: exit.code, signal: exit.signal }).to.deep.equal({ code: 0, signal: null });
        expect(exit.ms).to.be.lessThan(5000);
      } finally {
        serve.child.kill('SIGKILL');
      }
      // A data volume mounted elsewhere is said at start, not at the first backup.
      const misplaced = startServe([companionOnly, 'serve', '--data-dir', '/nonexistent/victoria-data']);
      try {
        await misplaced.until(/warning: data directory \/nonexistent\/victoria-data does not exist: mount the database's data volume there/);
      } finally {
        misplaced.child.kill('SIGKILL');
      }
    });
  });
});

describe('companion against VictoriaMetrics 1.79.5', function () {
  let vm: VmServer;
  let stateDir: string;
  let config: CompanionConfig;

  before(async function () {
    vm = await startVictoriaMetrics(this, { version: '1.79', snapshotAuthKey: 'snap-key-179' });
    await vm.importSeries(10, 50);
    stateDir = mkdtempSync(join(tmpdir(), 'companion-state-'));
    config = parseCompanionConfig([], { VICTORIA_KIND: 'metrics', VICTORIA_URL: vm.url, VICTORIA_DATA_DIR: vm.dataDir, VICTORIA_AUTH_KEY: 'snap-key-179', COMPANION_STATE_DIR: stateDir });
  });
  after(async () => {
    await vm?.stop();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it('pre records a snapshot whose files and bytes the companion serves; post deletes it', async () => {
    const admin = new MetricsSource({ url: vm.url, authKey: 'snap-key-179' });
    const pre = await preHook(config);
    expect((await admin.list()).map((s) => s.name)).to.deep.equal(pre.snapshots);
    const record = (await readRecord(stateDir))!;
    expect((await countsDocument(config)).counts).to.deep.equal({ series: 10, samples: 500 });
    const root = join(vm.dataDir, record.snapshots[0]!.dir);
    const doc = await filesDocument(config);
    expect(doc.trees[0]!.files).to.deep.equal(await listSnapshotFiles(root));
    const wanted = chooseSubset(doc.trees[0]!.files);
    await expectSameBytes(await inProcessTar(config, '', wanted), wanted, root);

    expect(await postHook(config)).to.deep.equal({ hook: 'post', deleted: pre.snapshots });
    expect(await admin.list()).to.deep.equal([]);
    expect(await postHook(config)).to.deep.equal({ hook: 'post', deleted: [] });
  });

  it('a wrong auth key (1.79 answers 400) names VICTORIA_AUTH_KEY and hides the key', async () => {
    const err = await companionError(preHook({ ...config, authKey: 'wrong-key-0815' }));
    expect(err.message).to.include('-snapshotAuthKey does not match').and.include('VICTORIA_AUTH_KEY');
    expect(err.message).not.to.include('wrong-key-0815');
    expect(await new MetricsSource({ url: vm.url, authKey: 'snap-key-179' }).list()).to.deep.equal([]);
    expect(await readRecord(stateDir)).to.equal(undefined);
  });
});

describe('companion against VictoriaLogs', function () {
  let vl: VlServer;
  let stateDir: string;
  let config: CompanionConfig;
  let perDay: Record<string, number>;
  const admin = (): LogsSource => new LogsSource({ url: vl.url, authKey: 'part-key', forceFlushAuthKey: 'flush-key' });

  before(async function () {
    vl = await startVictoriaLogs(this, { authKey: 'part-key', forceFlushAuthKey: 'flush-key', postOnly: true });
    ({ perDay } = await vl.ingest(300, 2));
    stateDir = mkdtempSync(join(tmpdir(), 'companion-state-'));
    config = parseCompanionConfig([], {
      VICTORIA_KIND: 'logs',
      VICTORIA_URL: vl.url,
      VICTORIA_DATA_DIR: vl.dataDir,
      VICTORIA_AUTH_KEY: 'part-key',
      VICTORIA_FORCE_FLUSH_AUTH_KEY: 'flush-key',
      COMPANION_STATE_DIR: stateDir,
    });
  });
  after(async () => {
    await vl?.stop();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it('pre snapshots every partition; counts gives rows per day', async () => {
    expect(Object.keys(perDay)).to.have.length(2);
    const pre = await preHook(config);
    expect(pre.snapshots).to.have.length(2);
    const record = (await readRecord(stateDir))!;
    expect(record.snapshots.map((s) => s.partition).sort()).to.deep.equal(Object.keys(perDay).sort());
    expect((await countsDocument(config)).counts).to.deep.equal({ rows: 300, ...Object.fromEntries(Object.entries(perDay).map(([d, n]) => [`rows.${d}`, n])) });
    expect((await admin().list()).map((s) => s.name).sort()).to.deep.equal([...pre.snapshots].sort());
  });

  it('files has one tree per partition, listed exactly as listSnapshotFiles does; tar serves a subset of one', async () => {
    const record = (await readRecord(stateDir))!;
    const doc = parseCompanionFiles(JSON.stringify(await filesDocument(config)));
    expect(doc.trees.map((t) => [t.prefix, t.restoreTo]).sort()).to.deep.equal(Object.keys(perDay).sort().map((d) => [`partitions/${d}/`, `partitions/${d}`]));
    for (const s of record.snapshots) {
      const tree = doc.trees.find((t) => t.prefix === s.relPathPrefix)!;
      expect(tree.files).to.deep.equal(await listSnapshotFiles(join(vl.dataDir, s.dir)));
    }
    const s = record.snapshots[1]!;
    const tree = doc.trees.find((t) => t.prefix === s.relPathPrefix)!;
    const wanted = chooseSubset(tree.files);
    await expectSameBytes(await inProcessTar(config, tree.prefix, wanted), wanted, join(vl.dataDir, s.dir));
  });

  it('post deletes every partition snapshot and is idempotent', async () => {
    const recorded = (await readRecord(stateDir))!.snapshots.map((s) => s.name);
    expect(await postHook(config)).to.deep.equal({ hook: 'post', deleted: recorded });
    expect(await admin().list()).to.deep.equal([]);
    expect(await postHook(config)).to.deep.equal({ hook: 'post', deleted: [] });
  });

  /** POST /internal/partition/{attach,detach} of one day, as an operator would. */
  const partition = async (action: 'attach' | 'detach', day: string): Promise<void> => {
    const res = await fetch(`${vl.url}/internal/partition/${action}`, { method: 'POST', body: new URLSearchParams({ name: day, authKey: 'part-key' }) });
    expect(res.status, await res.text()).to.equal(200);
  };

  it('post names a snapshot it cannot delete because its partition was detached, deletes the rest, and drops the record', async () => {
    const pre = await preHook(config);
    const record = (await readRecord(stateDir))!;
    const [kept, detached] = [...record.snapshots].sort((a, b) => a.partition!.localeCompare(b.partition!));
    await partition('detach', detached!.partition!);
    try {
      const post = await postHook(config);
      expect(post.deleted).to.deep.equal([]);
      expect(post.warning).to.include('cannot delete 1 snapshot(s) through its API because their partition is not attached').and.include(detached!.handle);
      expect(post.warning).not.to.include(kept!.handle);
      expect(await readRecord(stateDir), 'nothing left to retry').to.equal(undefined);
      expect(existsSync(join(vl.dataDir, detached!.dir)), 'the detached snapshot is still on disk').to.equal(true);
      expect((await admin().list()).map((s) => s.name)).to.deep.equal([]);
    } finally {
      await partition('attach', detached!.partition!);
    }
    // What the warning advises: attached again, the API reaches it.
    expect((await admin().list()).map((s) => s.name)).to.deep.equal([detached!.name]);
    expect(pre.snapshots).to.include(detached!.name);
    await admin().delete([detached!]);
    expect(await admin().list()).to.deep.equal([]);
  });

  it('pre again names a stale snapshot it cannot delete because its partition was detached, and deletes the rest', async () => {
    await preHook(config);
    const earlier = (await readRecord(stateDir))!;
    const [kept, detached] = [...earlier.snapshots].sort((a, b) => a.partition!.localeCompare(b.partition!));
    await partition('detach', detached!.partition!);
    let again;
    try {
      again = await preHook(config);
      expect(again.warning).to.include('cannot delete 1 snapshot(s) through its API because their partition is not attached').and.include(detached!.handle);
      expect(again.warning).not.to.include(kept!.handle);
      expect(existsSync(join(vl.dataDir, detached!.dir)), 'the detached snapshot is still on disk').to.equal(true);
      expect(existsSync(join(vl.dataDir, kept!.dir)), 'the other stale snapshot is deleted').to.equal(false);
      expect(again.snapshots).to.have.length(1);
    } finally {
      await partition('attach', detached!.partition!);
    }
    await admin().delete([detached!]);
    expect((await postHook(config)).deleted.sort()).to.deep.equal([...again.snapshots].sort());
    expect(await admin().list()).to.deep.equal([]);
  });

  it('a wrong force-flush key names VICTORIA_FORCE_FLUSH_AUTH_KEY and leaves nothing behind', async () => {
    const err = await companionError(preHook({ ...config, forceFlushAuthKey: 'bad-flush-key' }));
    expect(err.message).to.include('/internal/force_flush').and.include('VICTORIA_FORCE_FLUSH_AUTH_KEY');
    expect(err.message).not.to.include('bad-flush-key');
    expect(await admin().list()).to.deep.equal([]);
    expect(await readRecord(stateDir)).to.equal(undefined);
  });

  it('files goes on without a snapshot whose partition retention dropped after pre, and names it', async () => {
    await preHook(config);
    const record = (await readRecord(stateDir))!;
    const [dropped, kept] = [...record.snapshots].sort((a, b) => a.partition!.localeCompare(b.partition!));
    // As retention does: the partition leaves the server, and its directory with its snapshots goes.
    const saved = mkdtempSync(join(tmpdir(), 'partition-'));
    cpSync(join(vl.dataDir, 'partitions', dropped!.partition!), saved, { recursive: true });
    await partition('detach', dropped!.partition!);
    rmSync(join(vl.dataDir, 'partitions', dropped!.partition!), { recursive: true });
    try {
      const doc = parseCompanionFiles(JSON.stringify(await filesDocument(config)));
      expect(doc.droppedByRetention).to.deep.equal([dropped!.name]);
      expect(doc.trees.map((t) => t.prefix)).to.deep.equal([kept!.relPathPrefix]);
      expect(doc.snapshots.sort()).to.deep.equal(record.snapshots.map((s) => s.name).sort());
      // A snapshot missing from a partition that is still there is an error, as before.
      rmSync(join(vl.dataDir, kept!.dir), { recursive: true });
      expect((await companionError(filesDocument(config))).message).to.include(`snapshot ${kept!.name} is not at`);
    } finally {
      cpSync(saved, join(vl.dataDir, 'partitions', dropped!.partition!), { recursive: true });
      await partition('attach', dropped!.partition!);
    }
    await postHook(config);
    await admin().delete(await admin().list());
    expect(await admin().list()).to.deep.equal([]);
  });

  it('post counts a snapshot as gone when its partition is no longer on disk (retention dropped it), without a warning', async () => {
    await preHook(config);
    const record = (await readRecord(stateDir))!;
    const dropped = record.snapshots[0]!;
    // As retention does: the partition leaves the server, and its directory with its snapshots goes.
    await partition('detach', dropped.partition!);
    rmSync(join(vl.dataDir, 'partitions', dropped.partition!), { recursive: true });
    const post = await postHook(config);
    expect(post).to.deep.equal({ hook: 'post', deleted: record.snapshots.map((s) => s.name) });
    expect(await admin().list()).to.deep.equal([]);
  });
});

describe('companion against VictoriaLogs v1.31–v1.43 (no snapshot delete API)', function () {
  let vl: VlServer;
  let stateDir: string;
  let config: CompanionConfig;

  before(async function () {
    vl = await startVictoriaLogs(this, { legacySnapshotApi: true });
    await vl.ingest(60, 2);
    stateDir = mkdtempSync(join(tmpdir(), 'companion-state-'));
    config = parseCompanionConfig([], { VICTORIA_KIND: 'logs', VICTORIA_URL: vl.url, VICTORIA_DATA_DIR: vl.dataDir, COMPANION_STATE_DIR: stateDir });
  });
  after(async () => {
    await vl?.stop();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it('post leaves the snapshots with a warning naming them, and every later backup still gets its hooks through', async () => {
    const first = await preHook(config);
    expect(first.snapshots).to.have.length(2);
    const paths = (await readRecord(stateDir))!.snapshots.map((s) => s.handle);
    const post = await postHook(config);
    expect(post.deleted).to.deep.equal([]);
    expect(post.warning).to.include('cannot delete partition snapshots through its API (v1.44 or newer can): 2 snapshot(s) stay on disk');
    for (const p of paths) expect(post.warning).to.include(p);
    expect(await readRecord(stateDir), 'nothing left to retry').to.equal(undefined);

    // A pre hook whose run found the previous record (its post hook never ran) goes on as well.
    const second = await preHook(config);
    expect(second.snapshots).to.have.length(2);
    expect(second.warning).to.equal(undefined);
    const third = await preHook(config);
    expect(third.staleRemoved).to.deep.equal([]);
    expect(third.warning).to.include('cannot delete partition snapshots through its API');
    expect((await readRecord(stateDir))!.snapshots.map((s) => s.name)).to.deep.equal(third.snapshots);
  });

  it('serve stops tracking a set it cannot delete, and says so', async () => {
    const lines: string[] = [];
    const source = new LogsSource({ url: vl.url });
    const record = (await readRecord(stateDir))!;
    const names = await expireRecorded({ ...config, maxSnapshotAgeMs: 1 }, source, new Date(Date.parse(record.createdAt) + 60_000), (l) => lines.push(l));
    expect(names).to.deep.equal([]);
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/^recorded snapshot\(s\) from .* are left, and no longer tracked: VictoriaLogs at .* cannot delete partition snapshots/);
    expect(await readRecord(stateDir)).to.equal(undefined);
  });
});

/** A count query that VictoriaMetrics made slow holds: when it arrived, when its client gave up on it, and how to let it through. */
interface HeldQuery {
  arrivedAt: number;
  cancelledAt?: number;
  release(): void;
}

/**
 * VictoriaMetrics made slow: a proxy in front of it that forwards everything but the count query
 * (/api/v1/query), which it holds until released, noting when the client closed its connection.
 */
async function slowQueries(target: string): Promise<{ url: string; held: HeldQuery[]; close(): Promise<void> }> {
  const held: HeldQuery[] = [];
  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    const upstream = httpRequest(new URL(req.url ?? '/', target), { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', (err) => res.destroy(err));
    req.pipe(upstream);
  };
  const { url, close } = await startLoopbackServer((req, res) => {
    if (!req.url?.startsWith('/api/v1/query')) return forward(req, res);
    const query: HeldQuery = { arrivedAt: Date.now(), release: () => forward(req, res) };
    res.on('close', () => {
      if (!res.writableFinished) query.cancelledAt ??= Date.now();
    });
    held.push(query);
  });
  return { url, held, close };
}

async function until(what: string, done: () => boolean, ms = 10_000): Promise<void> {
  for (const deadline = Date.now() + ms; !done(); await sleep(50)) if (Date.now() > deadline) expect.fail(`${what} within ${ms} ms`);
}

describe('companion exec\'d through the API stand-in: a plugin that goes away (VictoriaMetrics 1.145)', function () {
  const NS = 'monitoring';
  const POD = 'vm-0';
  const CONTAINER = 'victoria-companion';
  let vm: VmServer;
  let slow: Awaited<ReturnType<typeof slowQueries>>;
  let api: KubeApiServer;
  let kube: KubeClient;
  let stateDir: string;
  let env: NodeJS.ProcessEnv;
  /** Files added to the recorded snapshot, sparse: as large as a big part, without the disk. */
  const big = { path: 'big.bin', size: 1024 ** 3 };
  const mid = { path: 'mid.bin', size: 32 << 20 };

  before(async function () {
    requireComponents(this, paths.plugin);
    vm = await startVictoriaMetrics(this, { version: '1.145', snapshotAuthKey: 'snap-key-145' });
    await vm.importSeries(20, 100);
    slow = await slowQueries(vm.url);
    stateDir = mkdtempSync(join(tmpdir(), 'companion-state-'));
    env = { VICTORIA_KIND: 'metrics', VICTORIA_URL: slow.url, VICTORIA_DATA_DIR: vm.dataDir, VICTORIA_AUTH_KEY: 'snap-key-145', COMPANION_STATE_DIR: stateDir };
    const pre = await cli(['hook', 'pre'], env);
    expect(pre.status, pre.stderr).to.equal(0);
    const snapshotDir = join(vm.dataDir, (await readRecord(stateDir))!.snapshots[0]!.dir);
    for (const f of [big, mid]) {
      writeFileSync(join(snapshotDir, f.path), '');
      truncateSync(join(snapshotDir, f.path), f.size);
    }
    api = await startKubeApi();
    api.put(makePod(NS, POD, ['victoria-metrics', CONTAINER]));
    // The sidecar as the plugin execs it: the built executable, with the container's environment.
    api.onExec(NS, POD, CONTAINER, sidecar);
    kube = KubeClient.load({ kubeconfig: api.writeKubeconfig(), env: {} });
  });
  after(async () => {
    await api?.close();
    if (env) await cli(['hook', 'post'], env);
    await slow?.close();
    await vm?.stop();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  /** The exec handler: the built executable as the sidecar; with `stdoutFile`, its stdout goes to that file instead of the exec. */
  const sidecar = (command: string[], stdoutFile?: string) => {
    if (command[0] !== EXECUTABLE) return undefined;
    const e = cleanEnv(env) as Record<string, string>;
    return stdoutFile === undefined ? { file: paths.plugin, args: command.slice(1), env: e } : { file: 'sh', args: ['-c', 'exec "$@" > "$0"', stdoutFile, paths.plugin, ...command.slice(1)], env: e };
  };
  const companion = (signal: AbortSignal): CompanionClient =>
    new CompanionClient({ kube, namespace: NS, pod: POD, container: CONTAINER, execTimeoutMs: 60_000, streamIdleTimeoutMs: 60_000, countTimeoutMs: 60_000, fileListLimitMiB: 64, signal });
  const execOf = (command: string): ExecRecord => api.execs.findLast((e) => e.command.includes(command))!;

  async function cancelled(p: Promise<unknown>): Promise<ExecError> {
    const err = await p.then(
      () => expect.fail('expected the exec to be cancelled'),
      (e: unknown) => e as ExecError,
    );
    expect(err).to.be.instanceOf(ExecError);
    expect(err.code).to.equal('Aborted');
    return err;
  }

  it('counts: the plugin giving up ends the count in the pod and its query to the database within seconds', async () => {
    const ac = new AbortController();
    const counting = companion(ac.signal).counts();
    await until('the count query reached the database', () => slow.held.length === 1);
    ac.abort(new Error('backup cancelled'));
    await cancelled(counting);
    const exec = execOf('counts');
    await until('the companion exited', () => exec.exitedAt !== undefined);
    expect(exec).to.include({ exitCode: COMPANION_EXIT.failed, stdinClosed: false });
    expect(exec.exitedAt! - exec.closedAt!, 'ms from the exec closed to the companion gone').to.be.below(3000);
    expect(slow.held[0]!.cancelledAt, 'the count query was cancelled').to.be.a('number');
    expect(slow.held[0]!.cancelledAt! - exec.closedAt!).to.be.below(3000);
  });

  it('counts from an older plugin (no stdin, no request) runs to its end in the pod after the exec was closed, as before', async () => {
    // Nobody reads the exec's output once it is closed: the companion's stdout goes to a file here, to see what it printed.
    const printed = join(mkdtempSync(join(tmpdir(), 'companion-counts-')), 'stdout');
    api.onExec(NS, POD, CONTAINER, (command) => sidecar(command, printed));
    try {
      const ac = new AbortController();
      const counting = execInPod({ kubeConfig: kube.kubeConfig, namespace: NS, pod: POD, container: CONTAINER, command: [EXECUTABLE, 'companion', 'counts', '--timeout', '60s'], signal: ac.signal });
      await until('the count query reached the database', () => slow.held.length === 2);
      ac.abort(new Error('backup cancelled'));
      await cancelled(counting);
      const exec = execOf('counts');
      await until('the exec closed', () => exec.closedAt !== undefined);
      // Well past the 3 s within which the tests above require a cancelled count to end.
      await sleep(Math.max(0, exec.closedAt! + 5000 - Date.now()));
      expect(exec.exitedAt, 'still counting').to.equal(undefined);
      expect(slow.held[1]!.cancelledAt, 'the query still runs').to.equal(undefined);
      slow.held[1]!.release();
      await until('the count finished', () => exec.exitedAt !== undefined);
      expect(exec.exitCode).to.equal(COMPANION_EXIT.ok);
      expect(slow.held[1]!.cancelledAt, 'the query was answered in full').to.equal(undefined);
      expect(parseCompanionCounts(readFileSync(printed, 'utf8')).counts, 'the counts it printed').to.deep.equal({ series: 20, samples: 2000 });
    } finally {
      api.onExec(NS, POD, CONTAINER, sidecar);
    }
  });

  it('counts (real CLI) says on stderr why it stopped when stdin ends after the request', async () => {
    const child = spawn(paths.plugin, ['companion', 'counts'], { env: cleanEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stdin.write(COUNTS_CANCEL_LINE);
    await until('the count query reached the database', () => slow.held.length === 3);
    const ended = Date.now();
    child.stdin.end();
    const [status] = (await once(child, 'close')) as [number | null];
    expect(Date.now() - ended).to.be.below(3000);
    expect(status).to.equal(COMPANION_EXIT.failed);
    expect(stdout).to.equal('');
    expect(stderr).to.match(/^velero-plugin-victoria companion counts: stopped: stdin ended, so the plugin that ran this command has gone \(.*\); it asked \(cancelOnStdinEnd\) for the command to stop then\n$/);
    expect(slow.held[2]!.cancelledAt).to.be.a('number');
  });

  it('tar: the plugin giving up on a stream nobody reads any more ends the tar in the pod within seconds', async () => {
    const ac = new AbortController();
    const from = api.execs.length;
    const stream = await companion(ac.signal).tar({ prefix: '' }, [{ path: big.path, size: big.size, mtimeMs: 0 }], ac.signal);
    stream.on('error', () => undefined); // destroyed with the cancellation
    await until('the exec opened', () => api.execs.length > from);
    const exec = execOf('tar');
    // Nobody reads: the stream fills every buffer on the way and the tar waits for its output.
    await until('the tar started streaming', () => exec.stdoutBytes > 0);
    await sleep(500);
    ac.abort(new Error('backup cancelled'));
    await until('the exec was closed', () => exec.closedAt !== undefined);
    await until('the companion exited', () => exec.exitedAt !== undefined);
    expect(exec).to.include({ exitCode: COMPANION_EXIT.failed, stdinClosed: false });
    expect(exec.stdoutBytes).to.be.below(big.size);
    expect(exec.exitedAt! - exec.closedAt!, 'ms from the exec closed to the companion gone').to.be.below(3000);
  });

  it('tar from an older plugin (stdin closed right after the request, no cancelOnStdinEnd) still streams the whole tar', async () => {
    let received = 0;
    let first = true;
    const consumer = new Writable({
      write(chunk: Buffer, _enc, done) {
        received += chunk.length;
        // Late to start, so that stdin has long ended while the tar still streams.
        if (first) setTimeout(done, 500);
        else done();
        first = false;
      },
    });
    const r = await execInPod({
      kubeConfig: kube.kubeConfig,
      namespace: NS,
      pod: POD,
      container: CONTAINER,
      command: [EXECUTABLE, 'companion', 'tar'],
      stdin: formatTarRequest({ tree: '', files: [mid.path] }),
      stdout: consumer,
      idleTimeoutMs: 30_000,
    });
    expect(r.protocol).to.equal(V5);
    expect(received).to.equal(512 + mid.size + 1024); // header, data, end of archive
    expect(execOf('tar')).to.include({ stdinClosed: true, exitCode: COMPANION_EXIT.ok });
  });
});
