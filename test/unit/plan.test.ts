/**
 * Restore plans (engine/plan.ts) and the read-only store over them (store/plan.ts): building from a
 * backup in memory, refusing incomplete and damaged backups, the SHA-256 and expiry checks, and
 * restoring through presigned URLs served by a local HTTP server that can fail on purpose. No URL
 * (and no signature) may ever appear in an error.
 */
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeBackup } from '../../src/engine/backup.js';
import { listSnapshotFiles, localFileReader } from '../../src/engine/files.js';
import { COMPLETE_KEY, MANIFEST_KEY } from '../../src/engine/manifest.js';
import { buildRestorePlan, MAX_PLAN_EXPIRY_SECONDS, parsePlan, RESTORE_PLAN_FORMAT, RestorePlanError, type PresignGet } from '../../src/engine/plan.js';
import { RESTORE_MARKER } from '../../src/engine/data-dir.js';
import { restoreBackup } from '../../src/engine/restore.js';
import { restoreCommand } from '../../src/cli/commands/restore.js';
import { UsageError } from '../../src/common/usage-error.js';
import { StoreError } from '../../src/store/errors.js';
import { fetchRestorePlan, PlanStore, PresignedUrlRefused } from '../../src/store/plan.js';
import { scrubUrls } from '../../src/common/redact.js';
import { s3Presigner } from '../../src/store/s3-presign.js';
import type { S3Client } from '@aws-sdk/client-s3';
import { S3Store } from '../../src/store/s3.js';
import { captureOutput } from '../support/capture-output.js';
import { startLoopbackServer } from '../support/loopback-server.js';
import { MemoryStore } from '../support/memory-store.js';
import { makeTestTls } from '../support/tls.js';
import { collect, readAll } from '../support/store-helpers.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
const SECRET = 'deadbeefcafe0123456789';

/** A small VictoriaMetrics-like snapshot (as in engine.test.ts). */
function makeSnapshot(): string {
  const dir = tmp('plan-snap-');
  mkdirSync(join(dir, 'data', 'small', '2026_11', 'PART1'), { recursive: true });
  mkdirSync(join(dir, 'metadata'));
  writeFileSync(join(dir, 'data', 'small', '2026_11', 'PART1', 'values.bin'), Buffer.alloc(300_000, 7));
  writeFileSync(join(dir, 'data', 'small', '2026_11', 'PART1', 'index.bin'), 'index');
  writeFileSync(join(dir, 'data', 'small', '2026_11', 'PART1', 'empty.bin'), '');
  writeFileSync(join(dir, 'data', 'small', '2026_11', 'parts.json'), '{"Small":["PART1"]}');
  writeFileSync(join(dir, 'metadata', 'minTimestampForCompositeIndex'), '12345678');
  return dir;
}

async function metricsBackup(store: MemoryStore, name = 'b1') {
  const snapshot = makeSnapshot();
  return writeBackup({
    store,
    name,
    kind: 'metrics',
    trees: [{ prefix: '', restoreTo: '', files: await listSnapshotFiles(snapshot), reader: localFileReader(snapshot) }],
    source: { snapshots: ['S1'] },
    counted: { counts: { series: 3, samples: 30 } },
    createdAt: new Date('2026-11-21T17:45:06Z'),
  });
}

async function logsBackup(store: MemoryStore, name = 'l1') {
  const part = tmp('plan-logs-');
  mkdirSync(join(part, 'datadb'), { recursive: true });
  writeFileSync(join(part, 'datadb', 'parts.json'), '[]');
  writeFileSync(join(part, 'datadb', 'rows.bin'), Buffer.alloc(5000, 3));
  return writeBackup({
    store,
    name,
    kind: 'logs',
    trees: [{ prefix: 'partitions/20261120/', restoreTo: 'partitions/20261120', files: await listSnapshotFiles(part), reader: localFileReader(part) }],
    source: { snapshots: ['P1'] },
    counted: { counts: { rows: 7 } },
    createdAt: new Date('2026-11-21T17:45:06Z'),
  });
}

/** Fake presigner: the URL names the store key; the "signature" is a secret that must never leak. */
const fakePresign = (base: string): PresignGet => async (key, seconds) =>
  `${base}/o/${key.split('/').map(encodeURIComponent).join('/')}?X-Amz-Expires=${seconds}&X-Amz-Signature=${SECRET}`;

/**
 * Serves a MemoryStore's objects at /o/<key> like S3 serves presigned GETs: whole objects (200) or
 * Range (206), ETags, If-Match. `fault` can answer instead (a status, or a reset mid-body).
 */
interface Served {
  base: string;
  requests: Array<{ key: string; range?: string; ifMatch?: string }>;
  fault?: (key: string, n: number, req: IncomingMessage, res: ServerResponse) => boolean;
  close(): Promise<void>;
}

async function serve(store: MemoryStore, extra: Record<string, Buffer> = {}, tls?: { key: string; cert: string }): Promise<Served> {
  const served: Served = { base: '', requests: [], close: async () => undefined };
  const counts = new Map<string, number>();
  const answer = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url!, 'http://x');
    const key = decodeURIComponent(url.pathname.replace(/^\/o\//, ''));
    const n = (counts.get(key) ?? 0) + 1;
    counts.set(key, n);
    served.requests.push({ key, ...(req.headers.range ? { range: req.headers.range } : {}), ...(req.headers['if-match'] ? { ifMatch: req.headers['if-match'] } : {}) });
    if (url.searchParams.get('X-Amz-Signature') !== SECRET) {
      res.writeHead(403, { 'content-type': 'application/xml' }).end('<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error>');
      return;
    }
    if (served.fault?.(key, n, req, res)) return;
    const body = extra[key] ?? store.objects.get(key);
    if (!body) {
      res.writeHead(404, { 'content-type': 'application/xml' }).end('<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>');
      return;
    }
    const etag = `"${createHash('md5').update(body).digest('hex')}"`;
    if (req.headers['if-match'] && req.headers['if-match'] !== etag) {
      res.writeHead(412).end('<Error><Code>PreconditionFailed</Code></Error>');
      return;
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (m) {
      const start = Number(m[1]);
      const end = Math.min(Number(m[2]), body.length - 1);
      res.writeHead(206, { etag, 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${body.length}` }).end(body.subarray(start, end + 1));
    } else {
      res.writeHead(200, { etag, 'content-length': body.length }).end(body);
    }
  };
  const server = await startLoopbackServer(tls ? createHttpsServer(tls, answer) : answer);
  served.base = server.url;
  served.close = server.close;
  return served;
}

const noLeak = (text: string) => {
  expect(text).to.not.include(SECRET);
  expect(text).to.not.match(/X-Amz-Signature=/i);
};

async function rejectionOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('restore plan: build and parse', () => {
  const now = new Date('2026-11-21T18:00:00Z');

  it('presigns the manifest, the complete marker and every part (not vmbackup markers), with sizes and the manifest counts', async () => {
    const store = new MemoryStore();
    const manifest = await metricsBackup(store);
    const presigned: Array<[string, number]> = [];
    const { plan, bytes, sha256 } = await buildRestorePlan({
      store, backupName: 'b1', restore: 'r1', expiresInSeconds: 3600, now,
      presign: async (key, s) => {
        presigned.push([key, s]);
        return fakePresign('https://s3.example/bucket/prefix')(key, s);
      },
    });
    const partKeys = [...store.objects.keys()].filter((k) => /\/[0-9A-F]{16}_[0-9A-F]{16}_[0-9A-F]{16}$/.test(k)).map((k) => k.slice('b1/'.length));
    expect(Object.keys(plan.objects).sort()).to.deep.equal([...partKeys, MANIFEST_KEY, COMPLETE_KEY].sort());
    expect(plan.objects).to.not.have.property('backup_complete.ignore');
    expect(plan.objects).to.not.have.property('backup_metadata.ignore');
    for (const [rel, o] of Object.entries(plan.objects)) expect(o.size, rel).to.equal(store.objects.get(`b1/${rel}`)!.length);
    expect(presigned.every(([key, s]) => key.startsWith('b1/') && s === 3600)).to.equal(true);
    expect(plan).to.include({ format: RESTORE_PLAN_FORMAT, restore: 'r1', backup: 'b1', kind: 'metrics', createdAt: now.toISOString(), expiresAt: '2026-11-21T19:00:00.000Z' });
    expect(plan.counts).to.deep.equal(manifest.counts);
    expect(sha256).to.equal(createHash('sha256').update(bytes).digest('hex'));
    expect(parsePlan(bytes, sha256, now)).to.deep.equal(plan);
    expect(parsePlan(bytes, sha256.toUpperCase(), now)).to.deep.equal(plan);
  });

  it('a changed or truncated plan does not match its SHA-256', async () => {
    const store = new MemoryStore();
    await metricsBackup(store);
    const { bytes, sha256 } = await buildRestorePlan({ store, backupName: 'b1', restore: 'r1', expiresInSeconds: 3600, now, presign: fakePresign('https://s3.example') });
    const changed = Buffer.from(bytes.toString().replace('"restore":"r1"', '"restore":"r2"'));
    for (const bad of [changed, bytes.subarray(0, bytes.length - 10)]) {
      const err = (() => { try { parsePlan(bad, sha256, now); } catch (e) { return e as RestorePlanError; } throw new Error('accepted'); })();
      expect(err).to.be.instanceOf(RestorePlanError);
      expect(err.problem).to.equal('sha256');
      expect(err.message).to.match(/^restore plan \(\d+ bytes\) does not match its SHA-256: expected [0-9a-f]{64}, got [0-9a-f]{64}: it was changed or truncated$/);
      noLeak(err.message);
    }
    expect(() => parsePlan(bytes, 'abc', now)).to.throw(RestorePlanError, /64 hex digits/);
  });

  it('an expired plan says when it expired and what to do', async () => {
    const store = new MemoryStore();
    await metricsBackup(store);
    const { bytes, sha256 } = await buildRestorePlan({ store, backupName: 'b1', restore: 'r1', expiresInSeconds: 60, now, presign: fakePresign('https://s3.example') });
    expect(parsePlan(bytes, sha256, new Date(now.getTime() + 59_000)).restore).to.equal('r1');
    const err = (() => { try { parsePlan(bytes, sha256, new Date(now.getTime() + 60_000)); } catch (e) { return e as RestorePlanError; } throw new Error('accepted'); })();
    expect(err.problem).to.equal('expired');
    expect(err.message).to.equal('restore plan expired at 2026-11-21T18:01:00.000Z (restore r1): run the restore again after deleting the workload ' +
        '(a pod deleted alone comes back from its template without this restore); plans are valid for restorePlanExpirySeconds, set in the plugin ConfigMap');
  });

  it('refuses documents that are not plans, without echoing URLs', () => {
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const doc = (o: object) => Buffer.from(JSON.stringify(o));
    const good = { format: RESTORE_PLAN_FORMAT, restore: 'r', backup: 'b', kind: 'metrics', createdAt: now.toISOString(), expiresAt: '2027-01-01T00:00:00Z', counts: {}, objects: { [MANIFEST_KEY]: { url: 'https://x/m', size: 1 }, [COMPLETE_KEY]: { url: 'https://x/c', size: 1 } } };
    expect(parsePlan(doc(good), sha(doc(good)), now).backup).to.equal('b');
    const cases: Array<[object | string, RegExp]> = [
      ['{', /not JSON/],
      [{ ...good, format: 'v0' }, /unknown format "v0"/],
      [{ ...good, backup: '../etc' }, /unsafe backup name/],
      [{ ...good, kind: 'traces' }, /unknown kind/],
      [{ ...good, expiresAt: 'soon' }, /is not a time/],
      [{ ...good, objects: { ...good.objects, '../x': { url: 'https://x', size: 1 } } }, /unsafe object key/],
      [{ ...good, objects: { ...good.objects, a: { url: `file:///etc/passwd?X-Amz-Signature=${SECRET}`, size: 1 } } }, /object a has no http\(s\) URL/],
      [{ ...good, objects: { [MANIFEST_KEY]: { url: 'https://x/m', size: 1 } } }, /lacks victoria_complete.ignore/],
    ];
    for (const [value, re] of cases) {
      const b = typeof value === 'string' ? Buffer.from(value) : doc(value);
      const err = (() => { try { parsePlan(b, sha(b), now); } catch (e) { return e as RestorePlanError; } throw new Error(`accepted ${String(re)}`); })();
      expect(err.problem).to.equal('format');
      expect(err.message).to.match(re);
      noLeak(err.message);
    }
  });

  it('refuses an incomplete backup (the catalog error) without presigning anything, and a damaged one', async () => {
    const store = new MemoryStore();
    store.failPut = (key) => key.includes('values.bin');
    await metricsBackup(store).catch(() => undefined);
    let presigned = 0;
    const presign: PresignGet = async (k, s) => (presigned++, fakePresign('https://x')(k, s));
    const err = await rejectionOf(buildRestorePlan({ store, backupName: 'b1', restore: 'r1', expiresInSeconds: 60, presign }));
    expect(err.message).to.match(/memory:\/\/test\/b1 is incomplete \(no victoria_complete.ignore\)/);
    expect(presigned).to.equal(0);
    expect((await rejectionOf(buildRestorePlan({ store, backupName: 'nothing', restore: 'r1', expiresInSeconds: 60, presign }))).message).to.match(/does not exist/);

    const ok = new MemoryStore();
    await metricsBackup(ok);
    const part = [...ok.objects.keys()].find((k) => k.includes('index.bin/'))!;
    ok.objects.delete(part);
    expect((await rejectionOf(buildRestorePlan({ store: ok, backupName: 'b1', restore: 'r1', expiresInSeconds: 60, presign }))).message).to.match(/b1 is damaged: 1 object\(s\) missing, e.g. data\/small\/2026_11\/PART1\/index.bin\/.*run verify/);
    expect(presigned).to.equal(0);
  });

  it('refuses expiries S3 cannot presign (over 7 days) and nonsense', async () => {
    const store = new MemoryStore();
    await metricsBackup(store);
    for (const s of [0, -1, 1.5, MAX_PLAN_EXPIRY_SECONDS + 1]) {
      const err = await rejectionOf(buildRestorePlan({ store, backupName: 'b1', restore: 'r1', expiresInSeconds: s, presign: fakePresign('https://x') }));
      expect(err.message).to.match(/from 1 to 604800 \(7 days/);
    }
  });
});

describe('restore plan: PlanStore over presigned URLs', () => {
  let served: Served | undefined;
  afterEach(async () => {
    await served?.close();
    served = undefined;
  });

  async function planFor(store: MemoryStore, backupName: string) {
    served = await serve(store);
    return buildRestorePlan({ store, backupName, restore: 'r1', expiresInSeconds: 3600, presign: fakePresign(served.base) });
  }

  it('restores a metrics backup byte for byte with whole-object GETs; head/list answer from the plan; writes are refused', async () => {
    const store = new MemoryStore();
    await metricsBackup(store);
    const { plan } = await planFor(store, 'b1');
    const ps = new PlanStore(plan, { retryBaseMs: 1 });
    try {
      expect(ps.backupName).to.equal('b1');
      expect(await ps.head(`b1/${MANIFEST_KEY}`)).to.deep.equal({ key: `b1/${MANIFEST_KEY}`, size: store.objects.get(`b1/${MANIFEST_KEY}`)!.length });
      expect(await ps.head('b1/backup_complete.ignore')).to.equal(undefined);
      expect((await collect(ps.list('b1/'))).length).to.equal(Object.keys(plan.objects).length);
      expect(await ps.listDirectories('')).to.deep.equal(['b1/']);
      expect(await ps.listDirectories('b1/')).to.deep.equal(['b1/data/', 'b1/metadata/']);
      for (const p of [ps.put('b1/x', Buffer.alloc(1), 1), ps.copy('b1/x', 'b1/y', 1), ps.delete(['b1/x'])]) {
        expect((await rejectionOf(p)).message).to.match(/a restore plan is read-only/);
      }
      const target = join(tmp('plan-restore-'), 'data');
      const res = await restoreBackup({ store: ps, name: ps.backupName, dataDir: target });
      expect(res.files).to.equal(5);
      expect(readFileSync(join(target, 'data/small/2026_11/PART1/values.bin')).equals(Buffer.alloc(300_000, 7))).to.equal(true);
      expect(readFileSync(join(target, 'data/small/2026_11/PART1/empty.bin')).length).to.equal(0);
      expect(readFileSync(join(target, 'metadata/minTimestampForCompositeIndex'), 'utf8')).to.equal('12345678');
      expect(served!.requests.every((r) => r.range === undefined)).to.equal(true);
      // A byte range is a ranged GET.
      expect((await readAll(await ps.get(`b1/${MANIFEST_KEY}`, { start: 2, end: 5 }))).toString()).to.equal(store.objects.get(`b1/${MANIFEST_KEY}`)!.subarray(2, 6).toString());
      expect(served!.requests.at(-1)!.range).to.equal('bytes=2-5');
    } finally {
      await ps.close();
    }
  });

  it('over https, large files land on disk as the backup has them (the checksum is of the bytes written)', async () => {
    // Files of several write buffers: the restore's writer makes the download wait while the
    // previous buffer is written, and TLS records keep arriving meanwhile.
    const dir = tmp('plan-big-');
    const files = [0, 1, 2, 3].map((i) => ({ path: `data/small/2026_11/P${i}/values.bin`, bytes: randomBytes(6 * 1024 * 1024 + i * 4099) }));
    for (const f of files) {
      mkdirSync(join(dir, f.path, '..'), { recursive: true });
      writeFileSync(join(dir, f.path), f.bytes);
    }
    const store = new MemoryStore();
    await writeBackup({
      store,
      name: 'big',
      kind: 'metrics',
      trees: [{ prefix: '', restoreTo: '', files: await listSnapshotFiles(dir), reader: localFileReader(dir) }],
      source: { snapshots: ['S'] },
      counted: { counts: {} },
      createdAt: new Date(),
    });
    const tls = makeTestTls();
    served = await serve(store, {}, { key: tls.keyPem, cert: tls.certPem });
    const { plan } = await buildRestorePlan({ store, backupName: 'big', restore: 'r1', expiresInSeconds: 3600, presign: fakePresign(served.base) });
    const ps = new PlanStore(plan, { retryBaseMs: 1, ca: [tls.caPem] });
    try {
      for (const directIo of [false, true]) {
        const target = join(tmp('plan-https-'), 'data');
        const res = await restoreBackup({ store: ps, name: 'big', dataDir: target, directIo });
        expect(res.files).to.equal(4);
        for (const f of files) expect(readFileSync(join(target, f.path)).equals(f.bytes), `${f.path} (directIo ${directIo})`).to.equal(true);
      }
    } finally {
      await ps.close();
    }
  });

  it('restores a VictoriaLogs partition under partitions/YYYYMMDD', async () => {
    const store = new MemoryStore();
    await logsBackup(store);
    const { plan } = await planFor(store, 'l1');
    expect(plan.kind).to.equal('logs');
    expect(Object.keys(plan.objects).some((k) => k.startsWith('partitions/20261120/datadb/rows.bin/'))).to.equal(true);
    const ps = new PlanStore(plan, { retryBaseMs: 1 });
    const target = join(tmp('plan-restore-'), 'data');
    try {
      await restoreBackup({ store: ps, name: ps.backupName, dataDir: target });
    } finally {
      await ps.close();
    }
    expect(readdirSync(join(target, 'partitions'))).to.deep.equal(['20261120']);
    expect(readFileSync(join(target, 'partitions/20261120/datadb/rows.bin')).equals(Buffer.alloc(5000, 3))).to.equal(true);
  });

  it('retries 5xx and 429, and resumes a body that breaks off with a ranged GET pinned to the ETag', async () => {
    const store = new MemoryStore();
    await metricsBackup(store);
    const { plan } = await planFor(store, 'b1');
    const values = [...store.objects.keys()].find((k) => k.includes('values.bin/'))!;
    served!.fault = (key, n, _req, res) => {
      if (key === `b1/${MANIFEST_KEY}` && n <= 2) {
        res.writeHead(n === 1 ? 503 : 429).end('<Error><Code>SlowDown</Code></Error>');
        return true;
      }
      if (key === values && n === 1) {
        const body = store.objects.get(values)!;
        res.writeHead(200, { etag: `"${createHash('md5').update(body).digest('hex')}"`, 'content-length': body.length });
        res.write(body.subarray(0, 100_000), () => res.destroy());
        return true;
      }
      return false;
    };
    const retries: string[] = [];
    const ps = new PlanStore(plan, { retryBaseMs: 1, onRetry: (e) => retries.push(`${e.reason}${e.status ? ` HTTP ${e.status}` : ''}`) });
    const target = join(tmp('plan-restore-'), 'data');
    try {
      await restoreBackup({ store: ps, name: 'b1', dataDir: target });
    } finally {
      await ps.close();
    }
    expect(readFileSync(join(target, 'data/small/2026_11/PART1/values.bin')).equals(Buffer.alloc(300_000, 7))).to.equal(true);
    const resumed = served!.requests.filter((r) => r.key === values);
    expect(resumed.length).to.equal(2);
    expect(resumed[1]!.range).to.match(/^bytes=\d+-299999$/);
    expect(resumed[1]!.ifMatch).to.match(/^"[0-9a-f]{32}"$/);
    expect(retries.filter((r) => /^SlowDown HTTP (503|429)$/.test(r)).length).to.equal(2);
    expect(retries.some((r) => r.startsWith('resume GET'))).to.equal(true);
    for (const r of retries) noLeak(r);
  });

  it('a refused URL (403) says to run the restore again; 404 and exhausted retries are named; no URL in any message', async () => {
    const store = new MemoryStore();
    await metricsBackup(store);
    const { plan } = await planFor(store, 'b1');
    served!.fault = (key, _n, _req, res) => {
      if (key === `b1/${MANIFEST_KEY}`) {
        res.writeHead(403, { 'content-type': 'application/xml' }).end(
          '<Error><Code>AccessDenied</Code><Message>Request has expired</Message><X-Amz-Expires>60</X-Amz-Expires><Expires>2026-11-21T18:01:00Z</Expires></Error>',
        );
        return true;
      }
      if (key === `b1/${COMPLETE_KEY}`) {
        res.writeHead(500).end();
        return true;
      }
      return false;
    };
    const ps = new PlanStore(plan, { retryBaseMs: 1, maxAttempts: 3 });
    try {
      const refused = await rejectionOf(ps.get(`b1/${MANIFEST_KEY}`));
      expect(refused).to.be.instanceOf(PresignedUrlRefused);
      expect((refused as PresignedUrlRefused).expires).to.equal('2026-11-21T18:01:00Z');
      expect(refused.message).to.equal(
        `get restore-plan:r1/b1/${MANIFEST_KEY}: the presigned URL was refused (HTTP 403 AccessDenied: Request has expired; expired or signed for another endpoint): run the restore again`,
      );
      const failed = await rejectionOf(ps.get(`b1/${COMPLETE_KEY}`));
      expect(failed.message).to.match(/failed after 3 attempts \(HTTP 500\)/);
      const missing = await rejectionOf(ps.get('b1/not-there'));
      expect((missing as StoreError).code).to.equal('NotFound');
      store.objects.delete([...store.objects.keys()].find((k) => k.includes('index.bin/'))!);
      const gone = await rejectionOf(ps.get(Object.keys(plan.objects).map((k) => `b1/${k}`).find((k) => k.includes('index.bin/'))!));
      expect(gone.message).to.match(/does not exist \(HTTP 404 NoSuchKey.*deleted or changed after the restore plan was made/);
      const wrongSig = new PlanStore({ ...plan, objects: { [MANIFEST_KEY]: { url: plan.objects[MANIFEST_KEY]!.url.replace(SECRET, 'forged'), size: 1 } } }, { retryBaseMs: 1 });
      const forged = await rejectionOf(wrongSig.get(`b1/${MANIFEST_KEY}`));
      await wrongSig.close();
      expect(forged.message).to.match(/presigned URL was refused \(HTTP 403 SignatureDoesNotMatch/);
      for (const e of [refused, failed, missing, gone, forged]) {
        noLeak(e.message);
        expect(e.message).to.not.include(served!.base);
      }
      // Connection failures: the message names the error, not the URL.
      const dead = new PlanStore({ ...plan, objects: { [MANIFEST_KEY]: { url: `http://127.0.0.1:1/o/x?X-Amz-Signature=${SECRET}`, size: 5 } } }, { retryBaseMs: 1, maxAttempts: 2 });
      const refusedConn = await rejectionOf(dead.get(`b1/${MANIFEST_KEY}`));
      await dead.close();
      expect(refusedConn.message).to.match(/failed after 2 attempts \(ECONNREFUSED/);
      noLeak(refusedConn.message);
    } finally {
      await ps.close();
    }
  });

  it('a web page instead of an object (a proxy\'s login portal) is named, not left to fail its SHA-256', async () => {
    const store = new MemoryStore();
    await metricsBackup(store);
    const { plan } = await planFor(store, 'b1');
    const valuesKey = [...store.objects.keys()].find((k) => k.endsWith('/values.bin') || k.includes('values.bin/'))!;
    // The page is exactly as long as the object, so no size check can catch it.
    const page = Buffer.alloc(store.objects.get(valuesKey)!.length, '<html>sign in</html>');
    served!.fault = (key, _n, _req, res) => {
      if (key !== valuesKey) return false;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': page.length }).end(page);
      return true;
    };
    const ps = new PlanStore(plan, { retryBaseMs: 1, maxAttempts: 2 });
    try {
      const err = await rejectionOf(restoreBackup({ store: ps, name: ps.backupName, dataDir: join(tmp('plan-page-'), 'data') }));
      expect((err as StoreError).code).to.equal('Config');
      expect(err.message).to.equal(
        `get restore-plan:r1/${valuesKey}: answered with a web page (Content-Type text/html; charset=utf-8) instead of the object: a proxy or a login portal between this pod and the object store? check that the pod reaches the store directly (the location's publicUrl, when pods need another address than Velero)`,
      );
      noLeak(err.message);
      // The plan itself, fetched the same way.
      served!.fault = (_key, _n, _req, res) => {
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html>portal</html>');
        return true;
      };
      const planErr = await rejectionOf(fetchRestorePlan(plan.objects[MANIFEST_KEY]!.url, { retryBaseMs: 1 }));
      expect(planErr.message).to.match(/^get the restore plan: answered with a web page \(Content-Type text\/html\) instead of the object/);
      noLeak(planErr.message);
    } finally {
      await ps.close();
    }
  });

  it('an object of another size than planned, and a Range ignored, are errors of their own (the unread body does not end the process)', async () => {
    const store = new MemoryStore();
    await metricsBackup(store);
    const { plan } = await planFor(store, 'b1');
    served!.fault = (key, _n, req, res) => {
      if (key !== `b1/${MANIFEST_KEY}`) return false;
      // Small bodies: undici has them whole at once, which is when an unhandled destroy() throws.
      const body = Buffer.alloc(req.headers.range ? 10 : 20, 1);
      res.writeHead(200, { 'content-length': body.length }).end(body);
      return true;
    };
    const ps = new PlanStore(plan, { retryBaseMs: 1, maxAttempts: 2 });
    try {
      const replaced = await rejectionOf(ps.get(`b1/${MANIFEST_KEY}`));
      expect((replaced as StoreError).code).to.equal('SizeMismatch');
      expect(replaced.message).to.match(/announced 20 bytes, \d+ were expected: the object was replaced after the restore plan was made$/);
      const ranged = await rejectionOf(ps.get(`b1/${MANIFEST_KEY}`, { start: 0, end: 9 }));
      expect(ranged.message).to.match(/the server ignored the Range header \(HTTP 200 instead of 206\)$/);
      // An uncaught AbortError from either body would fail this test after it returned.
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      await ps.close();
    }
  });

  it('scrubUrls removes query strings and signatures from any text', () => {
    expect(scrubUrls(`GET https://b.s3.amazonaws.com/p/k?X-Amz-Credential=AKIA&X-Amz-Signature=${SECRET} failed`)).to.equal('GET https://b.s3.amazonaws.com/p/k?<redacted> failed');
    expect(scrubUrls(`X-Amz-Signature=${SECRET}`)).to.equal('X-Amz-Signature=REDACTED');
  });
});

describe('restore plan: the restore command in plan mode (in-process)', () => {
  let served: Served | undefined;
  afterEach(async () => {
    await served?.close();
    served = undefined;
  });

  /** Runs restoreCommand with stdout/stderr captured. */
  async function run(args: string[]): Promise<{ code?: number; error?: Error; out: string }> {
    const { value: code, error, output: out } = await captureOutput(() => restoreCommand(args, {}));
    return { ...(error ? { error } : { code }), out };
  }

  it('restores from the plan URL, prints names not URLs, and maps a refused plan URL to the expiry message', async () => {
    const store = new MemoryStore();
    await metricsBackup(store);
    served = await serve(store);
    const built = await buildRestorePlan({ store, backupName: 'b1', restore: 'r1', expiresInSeconds: 3600, presign: fakePresign(served.base) });
    store.objects.set('plans/r1.json', built.bytes);
    const planUrl = await fakePresign(served.base)('plans/r1.json', 3600);
    expect((await fetchRestorePlan(planUrl)).equals(built.bytes)).to.equal(true);

    const target = join(tmp('plan-cli-'), 'data');
    const ok = await run(['--plan-url', planUrl, '--plan-sha256', built.sha256, '--data-dir', target, '--json']);
    expect(ok.error?.message).to.equal(undefined);
    expect(ok.code).to.equal(0);
    const summary = JSON.parse(ok.out.trim().split('\n').at(-1)!);
    expect(summary).to.include({ restore: 'r1', backup: 'b1', kind: 'metrics', files: 5, verified: true });
    expect(ok.out).to.not.include(served.base);
    noLeak(ok.out);

    // Run again with the same plan (the init container after a node reboot): the data stays as it
    // is; a marker of this restore (stopped after its note, before the marker went) is removed.
    writeFileSync(join(target, RESTORE_MARKER), `restore plan ${built.sha256}`);
    const again = await run(['--plan-url', planUrl, '--plan-sha256', built.sha256, '--data-dir', target]);
    expect(existsSync(join(target, RESTORE_MARKER))).to.equal(false);
    expect(again.code, again.error?.message).to.equal(0);
    expect(again.out).to.match(new RegExp(`^backup b1 \\(Velero restore r1\\) was restored into ${target} at \\S+; the data there is left as it is\\n$`));

    served.fault = (key, _n, _req, res) => {
      if (key !== 'plans/r1.json') return false;
      res.writeHead(403).end('<Error><Code>AccessDenied</Code><Message>Request has expired</Message><Expires>2026-11-21T18:01:00Z</Expires></Error>');
      return true;
    };
    const expired = await run(['--plan-url', planUrl, '--plan-sha256', built.sha256, '--data-dir', join(tmp('plan-cli-'), 'data')]);
    expect(expired.error?.message).to.match(/^restore plan expired at 2026-11-21T18:01:00Z: run the restore again/);
    for (const text of [expired.error!.message, again.out, expired.out]) {
      noLeak(text);
      expect(text).to.not.include(served.base);
    }
    // The plan is still valid, but S3 says an object's URL expired (e.g. a clock ahead of S3's): the expiry message, with the plan's time.
    served.fault = (key, _n, _req, res) => {
      if (key !== `b1/${MANIFEST_KEY}`) return false;
      res.writeHead(403).end('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
      return true;
    };
    const objectExpired = await run(['--plan-url', planUrl, '--plan-sha256', built.sha256, '--data-dir', join(tmp('plan-cli-'), 'data')]);
    expect(objectExpired.error?.message).to.match(
      new RegExp(`^restore plan expired at ${built.plan.expiresAt.replace(/\./g, '\\.')} \\(restore r1\\): run the restore again .*\\(get restore-plan:r1/b1/victoria_manifest.ignore: the presigned URL was refused \\(HTTP 403 AccessDenied: Request has expired`),
    );
    noLeak(objectExpired.error!.message);
    // Links signed with temporary credentials die with the session: AWS answers 400 ExpiredToken,
    // for the plan and for an object, and the message says why and what to change.
    const tokenExpired = (key: string) => (k: string, _n: number, _req: IncomingMessage, res: ServerResponse) => {
      if (k !== key) return false;
      res.writeHead(400).end('<Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message></Error>');
      return true;
    };
    const session = /its links were signed with temporary credentials \(S3: ExpiredToken\), whose session ended: a restore that takes longer needs longer sessions or static keys/;
    served.fault = tokenExpired('plans/r1.json');
    const planSession = await run(['--plan-url', planUrl, '--plan-sha256', built.sha256, '--data-dir', join(tmp('plan-cli-'), 'data')]);
    expect(planSession.error?.message).to.match(/^restore plan expired: run the restore again/).and.to.match(session);
    served.fault = tokenExpired(`b1/${MANIFEST_KEY}`);
    const objectSession = await run(['--plan-url', planUrl, '--plan-sha256', built.sha256, '--data-dir', join(tmp('plan-cli-'), 'data')]);
    expect(objectSession.error?.message).to.match(new RegExp(`^restore plan expired at ${built.plan.expiresAt.replace(/\./g, '\\.')} \\(restore r1\\)`)).and.to.match(session);
    expect(objectSession.error?.message).to.include('HTTP 400 ExpiredToken: The provided token has expired.; the temporary credentials that signed it have expired');
    for (const e of [planSession.error!, objectSession.error!]) noLeak(e.message);
    expect((await run(['--plan-url', planUrl, '--data-dir', target])).error?.message).to.match(/--plan-url, --plan-sha256 and --data-dir are required together/);
    for (const bad of ['ftp://host/plan?X-Amz-Signature=abc', 'not a url?X-Amz-Signature=abc']) {
      const refused = (await run(['--plan-url', bad, '--plan-sha256', built.sha256, '--data-dir', target])).error;
      expect(refused, bad).to.be.instanceOf(UsageError);
      expect(refused?.message).to.match(/^--plan-url is not an http:\/\/ or https:\/\/ URL: give the presigned URL of the restore plan/);
      expect(refused?.message, 'a signature is not echoed').not.to.include('abc');
    }
  });
});

describe('restore plan: presigning with an S3Store (local signing, no requests)', () => {
  const credentials = { accessKeyId: 'AKIAPRESIGNTEST', secretAccessKey: 'secret' };

  it('signs GETs of the store\'s keys for its endpoint, or for publicUrl, without checksum parameters', async () => {
    const store = new S3Store({ bucket: 'velero-bucket', prefix: 'velero/plugins/victoria/ns/vm', endpoint: 'http://minio.velero:9000', region: 'eu-west-1', credentials });
    const own = s3Presigner(store);
    const pub = s3Presigner(store, { publicUrl: 'https://s3.example.com:8443/' });
    try {
      const u1 = new URL(await own.presign('b1/victoria_manifest.ignore', 900));
      expect(`${u1.origin}${u1.pathname}`).to.equal('http://minio.velero:9000/velero-bucket/velero/plugins/victoria/ns/vm/b1/victoria_manifest.ignore');
      expect(u1.searchParams.get('X-Amz-Expires')).to.equal('900');
      expect(u1.searchParams.get('X-Amz-Credential')).to.match(/^AKIAPRESIGNTEST\/\d{8}\/eu-west-1\/s3\/aws4_request$/);
      expect(u1.searchParams.has('x-amz-checksum-mode')).to.equal(false);
      const u2 = new URL(await pub.presign('b1/a b+c', 604800));
      expect(`${u2.origin}${u2.pathname}`).to.equal('https://s3.example.com:8443/velero-bucket/velero/plugins/victoria/ns/vm/b1/a%20b%2Bc');
      expect(u2.searchParams.get('X-Amz-Signature')).to.not.equal(u1.searchParams.get('X-Amz-Signature'));
      for (const bad of [0, 604801, 1.5]) expect((await rejectionOf(own.presign('b1/x', bad))).message).to.match(/valid from 1 s to 604800 s/);
      expect((await rejectionOf(own.presign('../x', 60))).message).to.match(/invalid key/);
      expect(() => s3Presigner(store, { publicUrl: 'ftp://x' })).to.throw(/must start with http/);
    } finally {
      own.destroy();
      pub.destroy();
      store.destroy();
    }
  });

  it('on AWS without a configured region, signs for the bucket\'s region as HeadBucket reports it (one HeadBucket, also for the bucket check), not the client\'s guess', async () => {
    const heads: string[] = [];
    const client = {
      send: async (command: { constructor: { name: string } }) => {
        heads.push(command.constructor.name);
        if (command.constructor.name === 'HeadObjectCommand') throw Object.assign(new Error('NotFound'), { name: 'NotFound', $metadata: { httpStatusCode: 404 } });
        return { BucketRegion: 'ap-southeast-2' };
      },
      config: { credentials: async () => credentials, region: async () => 'us-east-1', forcePathStyle: false },
      destroy: () => undefined,
    } as unknown as S3Client;
    const store = new S3Store({ bucket: 'velero-bucket', prefix: 'velero', credentials }, client);
    const presigner = s3Presigner(store);
    try {
      // A missing object's HEAD checks the bucket: the region comes from that same HeadBucket.
      expect(await store.head('b1/missing')).to.equal(undefined);
      for (const key of ['b1/a', 'b1/b']) {
        const u = new URL(await presigner.presign(key, 900));
        expect(u.host).to.equal('velero-bucket.s3.ap-southeast-2.amazonaws.com');
        expect(u.searchParams.get('X-Amz-Credential')).to.match(/\/ap-southeast-2\/s3\/aws4_request$/);
      }
      expect(heads).to.deep.equal(['HeadObjectCommand', 'HeadBucketCommand']);
      // With a region configured, the configured one is used and nothing is asked.
      const configured = new S3Store({ bucket: 'velero-bucket', prefix: 'velero', region: 'eu-west-1', credentials }, client);
      expect(await configured.bucketRegion()).to.equal(undefined);
      expect(heads).to.have.length(2);
    } finally {
      presigner.destroy();
    }
  });
});

describe('restore plan: TLS with a private CA', () => {
  it('fails verification with a hint, and works with the CA (option, --ca-cert-file, or the environment) or insecureSkipTLSVerify', async () => {
    const tls = makeTestTls();
    const body = Buffer.from('{"plan":true}');
    const server = await startLoopbackServer(createHttpsServer({ key: tls.keyPem, cert: tls.certPem }, (_req, res) => res.writeHead(200, { 'content-length': body.length }).end(body)));
    const url = `${server.url}/plan.json?X-Amz-Signature=${SECRET}`;
    try {
      const err = await rejectionOf(fetchRestorePlan(url, { maxAttempts: 1 }));
      expect(err.message).to.match(/TLS verification failed; give the CA bundle as \$VELERO_PLUGIN_VICTORIA_CA_CERT or --ca-cert-file/);
      noLeak(err.message);
      expect((await fetchRestorePlan(url, { ca: [tls.caPem] })).equals(body)).to.equal(true);
      expect((await fetchRestorePlan(url, { insecureSkipTLSVerify: true })).equals(body)).to.equal(true);
      // The CLI reads the CA from the environment or --ca-cert-file: it gets as far as the SHA-256 check.
      const sha = createHash('sha256').update('other').digest('hex');
      const viaEnv = await rejectionOf(restoreCommand(['--plan-url', url, '--plan-sha256', sha, '--data-dir', join(tmp('plan-tls-'), 'd')], { VELERO_PLUGIN_VICTORIA_CA_CERT: tls.caPem }));
      expect(viaEnv.message).to.match(/does not match its SHA-256/);
      const viaFile = await rejectionOf(restoreCommand(['--plan-url', url, '--plan-sha256', sha, '--data-dir', join(tmp('plan-tls-'), 'd'), '--ca-cert-file', tls.caFile], {}));
      expect(viaFile.message).to.match(/does not match its SHA-256/);
      // A bundle that is not PEM is named as the user gave it.
      const notPem = await rejectionOf(restoreCommand(['--plan-url', url, '--plan-sha256', sha, '--data-dir', join(tmp('plan-tls-'), 'd')], { VELERO_PLUGIN_VICTORIA_CA_CERT: 'junk' }));
      expect(notPem.message).to.equal('$VELERO_PLUGIN_VICTORIA_CA_CERT is not a PEM certificate bundle (no "-----BEGIN CERTIFICATE-----" line)');
      const noFile = await rejectionOf(restoreCommand(['--plan-url', url, '--plan-sha256', sha, '--data-dir', join(tmp('plan-tls-'), 'd'), '--ca-cert-file', '/nonexistent/ca.pem'], {}));
      expect(noFile.message).to.match(/^cannot read --ca-cert-file \/nonexistent\/ca\.pem: ENOENT/);
    } finally {
      await server.close();
    }
  });
});
