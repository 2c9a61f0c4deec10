/**
 * The VictoriaMetrics and VictoriaLogs clients against real servers: VictoriaMetrics 1.145 (sid)
 * and 1.79.5 (bookworm) from Debian, and the VictoriaLogs test server on the real lib/logstorage.
 * One server per describe; each start takes about a second.
 */
import { expect } from 'chai';
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { SnapshotUndeletableError, VictoriaError, VictoriaHttpError } from '../../src/victoria/errors.js';
import { LogsSource } from '../../src/victoria/logs-source.js';
import { MetricsSource } from '../../src/victoria/metrics-source.js';
import type { Snapshot } from '../../src/victoria/types.js';
import { exportCounts } from '../../src/victoria/vm-counts.js';
import { vmSnapshot } from '../../src/victoria/vm-snapshots.js';
import { startVictoriaMetrics, VM_VERSIONS, type ImportedData, type VmServer } from '../support/victoria-metrics.js';
import { startVictoriaLogs, type IngestedLogs, type VlServer } from '../support/victorialogs.js';

/** Files under `root`, following symlinks (as the engine walks a VictoriaMetrics snapshot), as relPaths. */
function walk(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(root, rel)).sort()) {
    const r = rel === '' ? name : `${rel}/${name}`;
    const st = statSync(join(root, r));
    if (st.isDirectory()) out.push(...walk(root, r));
    else out.push(r);
  }
  return out;
}

function hasSymlinks(root: string): boolean {
  for (const e of readdirSync(root, { withFileTypes: true, recursive: true })) {
    if (lstatSync(join(e.parentPath, e.name)).isSymbolicLink()) return true;
  }
  return false;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

const KEY = 'snap-key-123';

for (const version of VM_VERSIONS) {
  describe(`victoria clients: VictoriaMetrics ${version}`, function () {
    let vm: VmServer | undefined;
    let src: MetricsSource;
    let data: ImportedData;

    before(async function () {
      vm = await startVictoriaMetrics(this, { version, snapshotAuthKey: KEY });
      data = await vm.importSeries(20, 50);
      src = new MetricsSource({ url: vm.url, authKey: KEY });
    });
    after(async () => {
      await vm?.stop();
    });

    it('counts exactly the imported series and samples (query and export)', async () => {
      expect(await src.counts()).to.deep.equal({ kind: 'metrics', series: 20, samples: 1000 });
      expect(await exportCounts(src.http)).to.deep.equal({ series: 20, samples: 1000 });
    });

    it('counts series of different lengths; over -search.maxSeriesPerAggrFunc (1.145) it counts with two queries instead', async function () {
      const limited = await startVictoriaMetrics(this, { version, ...(version === '1.145' ? { extraArgs: ['-search.maxSeriesPerAggrFunc=1'] } : {}) });
      try {
        await limited.importSeries(3, 40, { metric: 'vpv_long' });
        await limited.importSeries(2, 25, { metric: 'vpv_short' });
        const counted = await new MetricsSource({ url: limited.url }).counts();
        expect(counted).to.deep.equal({ kind: 'metrics', series: 5, samples: 170 });
        expect(await exportCounts(new MetricsSource({ url: limited.url }).http)).to.deep.equal({ series: 5, samples: 170 });
      } finally {
        await limited.stop();
      }
    });

    it('counts only samples before `end`', async () => {
      // Samples are 15 s apart from data.firstMs; the first ten are before firstMs + 150 s.
      const end = new Date(data.firstMs + 10 * 15_000);
      expect(await src.counts({ end })).to.deep.equal({ kind: 'metrics', series: 20, samples: 200 });
      expect(await exportCounts(src.http, end)).to.deep.equal({ series: 20, samples: 200 });
    });

    it('create, list and delete round trip; the files are where the Snapshot says', async () => {
      const created = await src.create();
      expect(created).to.have.length(1);
      const snap = created[0] as Snapshot;
      expect(snap).to.deep.include({ kind: 'metrics', dir: `snapshots/${snap.name}`, relPathPrefix: '' });
      expect(Math.abs(snap.createdAt.getTime() - Date.now())).to.be.lessThan(120_000);
      expect((await src.list()).map((s) => s.name)).to.include(snap.name);

      const dir = join(vm?.dataDir ?? '', snap.dir);
      expect(lstatSync(join(dir, 'data', 'small')).isSymbolicLink(), 'data/small is a symlink').to.equal(true);
      const files = walk(dir);
      expect(files.some((f) => f.startsWith('data/small/') && f.endsWith('/values.bin')), files.join('\n')).to.equal(true);
      expect(files).to.include('metadata/minTimestampForCompositeIndex');
      if (version === '1.145') {
        // Per-month partitions with parts.json and a per-partition indexdb.
        expect(files.some((f) => /^data\/small\/\d{4}_\d{2}\/parts\.json$/.test(f)), files.join('\n')).to.equal(true);
        expect(files.some((f) => f.startsWith('data/indexdb/'))).to.equal(true);
      } else {
        // Legacy: top-level indexdb with generations, part names encode their metadata.
        expect(files.some((f) => f.startsWith('indexdb/'))).to.equal(true);
        expect(files.some((f) => f.endsWith('/min_dedup_interval'))).to.equal(true);
      }

      await src.delete([snap]);
      expect((await src.list()).map((s) => s.name)).not.to.include(snap.name);
      expect(existsSync(dir)).to.equal(false);
    });

    it('deleting a snapshot that is gone is not an error (1.79: 200 ok; 1.145: 500 "cannot find snapshot")', async () => {
      const [snap] = await src.create();
      await src.delete([snap as Snapshot]);
      await src.delete([snap as Snapshot]);
      const outcome = await src.snapshots.delete('20200101000000-0000000000000000');
      expect(outcome).to.equal(version === '1.145' ? 'missing' : 'deleted');
    });

    it('an invalid snapshot name is refused with a clear error before the server sees it', async () => {
      const err = await rejection(src.snapshots.delete('nonexistent'));
      expect(err).to.be.instanceOf(VictoriaError);
      expect(err.message).to.match(/"nonexistent" is invalid: it must look like YYYYMMDDhhmmss-HEX/);
    });

    it('deleteStale removes exactly the named leftovers', async () => {
      const [a] = await src.create();
      const [b] = await src.create();
      const gone = { ...(a as Snapshot), name: '20200101000000-0000000000000000', handle: '20200101000000-0000000000000000' };
      const removed = await src.deleteStale([a as Snapshot, gone]);
      expect(removed.map((s) => s.name)).to.deep.equal([(a as Snapshot).name]);
      const left = (await src.list()).map((s) => s.name);
      expect(left).to.include((b as Snapshot).name);
      expect(left).not.to.include((a as Snapshot).name);
      await src.delete([b as Snapshot]);
    });

    it('a wrong -snapshotAuthKey gives an error naming the flag and the option, without the key', async () => {
      const wrong = new MetricsSource({ url: vm?.url ?? '', authKey: 'wrong-key-456' });
      const err = (await rejection(wrong.create())) as VictoriaHttpError;
      expect(err).to.be.instanceOf(VictoriaHttpError);
      expect(err.status).to.equal(version === '1.145' ? 401 : 400);
      expect(err.authFlag).to.equal('snapshotAuthKey');
      expect(err.message).to.contain(`${vm?.url}/snapshot/create`);
      expect(err.message).to.contain('-snapshotAuthKey does not match: pass the server\'s -snapshotAuthKey value with --auth-key');
      expect(err.message).not.to.contain('wrong-key-456');
      expect(err.message).not.to.contain(KEY);
    });

    it('a missing key says the server requires -snapshotAuthKey', async () => {
      const none = new MetricsSource({ url: vm?.url ?? '' });
      const err = (await rejection(none.list())) as VictoriaHttpError;
      expect(err.authFlag).to.equal('snapshotAuthKey');
      expect(err.message).to.contain('the server requires -snapshotAuthKey: pass its value with --auth-key');
    });

    it('the wrong kind for the server (logs against VictoriaMetrics) says what the server is', async () => {
      const err = (await rejection(new LogsSource({ url: vm?.url ?? '', authKey: KEY }).create())) as VictoriaError;
      expect(err.message).to.match(/no partition snapshot API: .* or it is a VictoriaMetrics \(then the kind is metrics: --kind metrics, VICTORIA_KIND=metrics\)/);
      expect((await new MetricsSource({ url: vm?.url ?? '', authKey: KEY }).list()).length, 'nothing made').to.equal(0);
    });

    it('a URL with a path the server does not serve says so (create and list)', async () => {
      const prefixed = new MetricsSource({ url: `${vm?.url}/vm/`, authKey: KEY });
      const hint = "the URL's path /vm is part of every request: unless the server runs with -http.pathPrefix=/vm, give the URL without it";
      expect((await rejection(prefixed.create())).message).to.contain(`${vm?.url}/vm/snapshot/create`).and.contain(hint);
      expect((await rejection(prefixed.list())).message).to.contain(hint);
      expect((await src.list()).length, 'nothing made').to.equal(0);
    });

    it('Debian builds report no version', async () => {
      expect(await src.version()).to.equal(undefined);
    });

    it('a snapshot made by the plain API maps onto the same Snapshot shape', async () => {
      const name = await src.snapshots.create();
      expect(vmSnapshot(name).dir).to.equal(`snapshots/${name}`);
      expect(existsSync(join(vm?.dataDir ?? '', 'snapshots', name))).to.equal(true);
      await src.snapshots.delete(name);
    });
  });
}

for (const version of VM_VERSIONS) {
  describe(`victoria clients: VictoriaMetrics ${version} behind basic auth (-httpAuth.*)`, function () {
    const USER = 'vpv-user';
    const PASSWORD = 'basic-pw-789';
    let vm: VmServer | undefined;
    let withUrl: (user: string, password: string) => string;

    before(async function () {
      vm = await startVictoriaMetrics(this, { version, basicAuth: { username: USER, password: PASSWORD } });
      await vm.importSeries(10, 30);
      const port = new URL(vm.url).port;
      withUrl = (user, password) => `http://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}`;
    });
    after(async () => {
      await vm?.stop();
    });

    it('credentials in the URL: snapshot create, list and delete and the counts work', async () => {
      const src = new MetricsSource({ url: withUrl(USER, PASSWORD) });
      expect(src.url, 'the URL it records and prints carries no credentials').to.equal(vm?.url);
      const [snap] = await src.create();
      expect((await src.list()).map((s) => s.name)).to.deep.equal([snap?.name]);
      expect(await src.counts()).to.deep.equal({ kind: 'metrics', series: 10, samples: 300 });
      await src.delete([snap as Snapshot]);
      expect(await src.list()).to.deep.equal([]);
    });

    it('a wrong password names -httpAuth.* and never shows the password; none at all says basic auth is required', async () => {
      const wrong = (await rejection(new MetricsSource({ url: withUrl(USER, 'not-the-pw-456') }).create())) as VictoriaHttpError;
      expect(wrong).to.be.instanceOf(VictoriaHttpError);
      expect(wrong.status).to.equal(401);
      expect(wrong.authFlag).to.equal('httpAuth');
      expect(wrong.message).to.contain("the basic auth credentials do not match the server's -httpAuth.username/-httpAuth.password");
      expect(wrong.message).not.to.contain('not-the-pw-456');
      expect(wrong.message).not.to.contain(PASSWORD);
      const none = (await rejection(new MetricsSource({ url: vm?.url ?? '' }).list())) as VictoriaHttpError;
      expect(none.authFlag).to.equal('httpAuth');
      expect(none.message).to.contain('the server requires basic auth (-httpAuth.username/-httpAuth.password): pass credentials');
    });

    it('with -snapshotAuthKey as well: credentials and key together back up; credentials alone name the key', async function () {
      const both = await startVictoriaMetrics(this, { version, basicAuth: { username: USER, password: PASSWORD }, snapshotAuthKey: KEY });
      try {
        await both.importSeries(5, 20);
        const url = `http://${USER}:${PASSWORD}@127.0.0.1:${new URL(both.url).port}`;
        const src = new MetricsSource({ url, authKey: KEY });
        const [snap] = await src.create();
        expect(await src.counts()).to.deep.equal({ kind: 'metrics', series: 5, samples: 100 });
        await src.delete([snap as Snapshot]);
        const keyless = (await rejection(new MetricsSource({ url }).list())) as VictoriaHttpError;
        expect(keyless.authFlag).to.equal('snapshotAuthKey');
      } finally {
        await both.stop();
      }
    });
  });
}

/** Sum of RowsCount over the datadb parts of a partition snapshot: what the files hold. */
function rowsInSnapshot(dir: string): number {
  let rows = 0;
  const datadb = join(dir, 'datadb');
  for (const e of readdirSync(datadb, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const meta = JSON.parse(readFileSync(join(datadb, e.name, 'metadata.json'), 'utf8')) as { RowsCount?: number };
    rows += meta.RowsCount ?? 0;
  }
  return rows;
}

describe('victoria clients: VictoriaLogs test server', function () {
  let vl: VlServer | undefined;
  let src: LogsSource;
  let data: IngestedLogs;

  before(async function () {
    vl = await startVictoriaLogs(this, { authKey: KEY });
    data = await vl.ingest(600, 3);
    src = new LogsSource({ url: vl.url, authKey: KEY });
  });
  after(async () => {
    await vl?.stop();
  });

  it('counts log entries per partition exactly', async () => {
    expect(Object.keys(data.perDay)).to.have.length(3);
    expect(await src.counts()).to.deep.equal({ kind: 'logs', rows: 600, partitions: data.perDay });
  });

  it('counts only entries before `end`', async () => {
    const days = Object.keys(data.perDay);
    const newest = days.at(-1) ?? '';
    const end = new Date(`${newest.slice(0, 4)}-${newest.slice(4, 6)}-${newest.slice(6, 8)}T00:00:00Z`);
    const c = await src.counts({ end });
    expect(c.partitions).to.deep.equal(Object.fromEntries(days.slice(0, -1).map((d) => [d, data.perDay[d]])));
  });

  it('one snapshot per partition, holding that partition\'s rows, at the path the Snapshot says', async () => {
    const snaps = await src.create();
    try {
      expect(snaps.map((s) => s.partition)).to.deep.equal(Object.keys(data.perDay));
      expect(await src.partitions.partitions()).to.deep.equal(Object.keys(data.perDay));
      for (const s of snaps) {
        const day = s.partition ?? '';
        expect(s).to.deep.include({ kind: 'logs', dir: `partitions/${day}/snapshots/${s.name}`, relPathPrefix: `partitions/${day}/` });
        expect(isAbsolute(s.handle), 'absolute -storageDataPath gives absolute paths').to.equal(true);
        const dir = join(vl?.dataDir ?? '', s.dir);
        expect(existsSync(join(dir, 'datadb', 'parts.json'))).to.equal(true);
        expect(existsSync(join(dir, 'indexdb', 'parts.json'))).to.equal(true);
        expect(hasSymlinks(dir)).to.equal(false);
        expect(rowsInSnapshot(dir), `rows in ${s.dir}`).to.equal(data.perDay[day]);
      }
      expect((await src.list()).map((s) => s.handle).sort()).to.deep.equal(snaps.map((s) => s.handle).sort());
    } finally {
      await src.delete(snaps);
    }
    expect(await src.list()).to.deep.equal([]);
    for (const s of snaps) expect(existsSync(join(vl?.dataDir ?? '', s.dir))).to.equal(false);
  });

  it('rows ingested just before the snapshot are in it (create flushes first)', async () => {
    const more = await vl?.ingest(30, 1, { prefix: 'late' });
    const snaps = await src.create();
    try {
      const day = Object.keys(more?.perDay ?? {})[0] ?? '';
      const s = snaps.find((x) => x.partition === day) as Snapshot;
      expect(rowsInSnapshot(join(vl?.dataDir ?? '', s.dir))).to.equal((data.perDay[day] ?? 0) + 30);
    } finally {
      await src.delete(snaps);
    }
  });

  it('deleting twice is not an error (the server answers 400 "doesn\'t exist" the second time)', async () => {
    const snaps = await src.create();
    await src.delete(snaps);
    await src.delete(snaps);
    expect(await src.partitions.deleteSnapshot(snaps[0]?.handle ?? '')).to.equal('missing');
  });

  it('deleteStale removes exactly the named leftovers', async () => {
    const first = await src.create();
    const second = await src.create();
    const removed = await src.deleteStale(first);
    expect(removed.map((s) => s.handle).sort()).to.deep.equal(first.map((s) => s.handle).sort());
    expect((await src.list()).map((s) => s.handle).sort()).to.deep.equal(second.map((s) => s.handle).sort());
    await src.delete(second);
  });

  it('a wrong -partitionManageAuthKey gives an error naming the flag and the option, without the key', async () => {
    const wrong = new LogsSource({ url: vl?.url ?? '', authKey: 'wrong-key-456' });
    const err = (await rejection(wrong.create())) as VictoriaHttpError;
    expect(err).to.be.instanceOf(VictoriaHttpError);
    expect(err.status).to.equal(401);
    expect(err.authFlag).to.equal('partitionManageAuthKey');
    expect(err.message).to.contain(`${vl?.url}/internal/partition/snapshot/create`);
    expect(err.message).to.contain('-partitionManageAuthKey does not match: pass the server\'s -partitionManageAuthKey value with --auth-key');
    expect(err.message).not.to.contain('wrong-key-456');
  });

  it('the wrong kind for the server (metrics against VictoriaLogs) says what the server is', async () => {
    const err = (await rejection(new MetricsSource({ url: vl?.url ?? '', authKey: KEY }).create())) as VictoriaError;
    expect(err.message).to.match(/^VictoriaMetrics POST http:\/\/\S+\/snapshot\/create: the server has no snapshot API: .*A VictoriaLogs answers this way \(then the kind is logs: --kind logs, VICTORIA_KIND=logs\)/);
  });

  it('reports no version (not a VictoriaLogs release)', async () => {
    expect(await src.version()).to.equal(undefined);
  });
});

describe('victoria clients: VictoriaLogs variants', function () {
  describe('POST-only /internal/* (after v1.52), relative -storageDataPath', function () {
    let vl: VlServer | undefined;
    before(async function () {
      vl = await startVictoriaLogs(this, { postOnly: true, relativeDataPath: true });
      await vl.ingest(90, 2);
    });
    after(async () => {
      await vl?.stop();
    });

    it('creates and deletes with relative paths, mapped onto the data directory', async () => {
      const src = new LogsSource({ url: vl?.url ?? '' });
      const snaps = await src.create();
      expect(snaps).to.have.length(2);
      for (const s of snaps) {
        expect(isAbsolute(s.handle), s.handle).to.equal(false);
        expect(s.handle.startsWith('data/partitions/')).to.equal(true);
        expect(existsSync(join(vl?.dataDir ?? '', s.dir, 'datadb'))).to.equal(true);
      }
      expect((await src.counts()).rows).to.equal(90);
      await src.delete(snaps);
      expect(await src.list()).to.deep.equal([]);
    });
  });

  describe('v1.31-v1.43 partition snapshot API', function () {
    let vl: VlServer | undefined;
    before(async function () {
      vl = await startVictoriaLogs(this, { legacySnapshotApi: true });
      await vl.ingest(60, 3);
    });
    after(async () => {
      await vl?.stop();
    });

    it('creates one snapshot per partition by name; delete says which version it needs', async () => {
      const src = new LogsSource({ url: vl?.url ?? '' });
      const snaps = await src.create();
      expect(snaps.map((s) => s.partition)).to.deep.equal(await src.partitions.partitions());
      expect(snaps).to.have.length(3);
      for (const s of snaps) expect(rowsInSnapshot(join(vl?.dataDir ?? '', s.dir))).to.equal(20);
      const err = await rejection(src.delete(snaps));
      expect(err).to.be.instanceOf(SnapshotUndeletableError);
      expect((err as SnapshotUndeletableError).paths).to.deep.equal(snaps.map((s) => s.handle));
      expect(err.message).to.contain('cannot delete partition snapshots through its API (v1.44 or newer can): 3 snapshot(s) stay on disk');
    });
  });

  describe('-forceFlushAuthKey', function () {
    let vl: VlServer | undefined;
    before(async function () {
      vl = await startVictoriaLogs(this, { authKey: KEY, forceFlushAuthKey: 'flush-key-789' });
    });
    after(async () => {
      await vl?.stop();
    });

    it('without the flush key, create fails naming -forceFlushAuthKey; with it, it works', async () => {
      const err = (await rejection(new LogsSource({ url: vl?.url ?? '', authKey: KEY }).create())) as VictoriaHttpError;
      expect(err.authFlag).to.equal('forceFlushAuthKey');
      expect(err.message).to.contain('the server requires -forceFlushAuthKey: pass its value with --force-flush-auth-key');
      const ok = new LogsSource({ url: vl?.url ?? '', authKey: KEY, forceFlushAuthKey: 'flush-key-789' });
      expect(await ok.create()).to.deep.equal([]); // an empty database has no partitions
    });
  });
});
