import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { leftIncomplete, pendingCounts, writeBackup, type BackupCounts, type BackupRequest } from '../../src/engine/backup.js';
import { JOURNAL_PREFIX, JournalWriter, readJournal } from '../../src/engine/journal.js';
import { attemptNote, FolderTakenError } from '../../src/engine/backup-folder.js';
import { failedAttempts, listBackups, newestComplete, openBackup } from '../../src/engine/catalog.js';
import { lockHolderOf } from '../../src/engine/db-lock.js';
import { listSnapshotFiles, localFileReader, type FileReader, type SnapshotFile } from '../../src/engine/files.js';
import { checkRelPath, isMutableFile, parsePartKey, partKey, splitParts } from '../../src/engine/layout.js';
import { COMPLETE_KEY, copiesRefusedText, IN_PROGRESS_KEY, MANIFEST_KEY } from '../../src/engine/manifest.js';
import { checkDataDir, RESTORE_MARKER } from '../../src/engine/data-dir.js';
import { deleteBackup } from '../../src/engine/delete.js';
import { RESTORE_STAGING, restoreBackup } from '../../src/engine/restore.js';
import { verifyBackup } from '../../src/engine/verify.js';
import { buildRestorePlan } from '../../src/engine/plan.js';
import type { Progress } from '../../src/engine/progress.js';
import { StoreError } from '../../src/store/errors.js';
import { FileStore } from '../../src/store/file.js';
import type { ObjectStore, PutBody } from '../../src/store/types.js';
import { MemoryStore } from '../support/memory-store.js';

const sha256Of = (text: string) => createHash('sha256').update(text).digest('hex');
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

/** A VictoriaMetrics-like snapshot: real files under data/, reached through a symlink as VM does. */
function makeSnapshot(): { dataDir: string; snapshot: string } {
  const dataDir = tmp('vm-data-');
  const real = join(dataDir, 'data', 'small', 'snapshots', 'S1', '2026_11');
  mkdirSync(join(real, 'PART1'), { recursive: true });
  writeFileSync(join(real, 'PART1', 'values.bin'), Buffer.alloc(300_000, 7));
  writeFileSync(join(real, 'PART1', 'index.bin'), 'index');
  writeFileSync(join(real, 'PART1', 'empty.bin'), '');
  writeFileSync(join(real, 'parts.json'), '{"Small":["PART1"]}');
  const snapshot = join(dataDir, 'snapshots', 'S1');
  mkdirSync(join(snapshot, 'data'), { recursive: true });
  mkdirSync(join(snapshot, 'metadata'));
  writeFileSync(join(snapshot, 'metadata', 'minTimestampForCompositeIndex'), '12345678');
  symlinkSync('../../../data/small/snapshots/S1', join(snapshot, 'data', 'small'));
  writeFileSync(join(snapshot, 'flock.lock'), '');
  return { dataDir, snapshot };
}

async function backupOf(store: ObjectStore, snapshot: string, name: string, extra: Partial<BackupRequest> = {}) {
  const files = await listSnapshotFiles(snapshot);
  return writeBackup({
    store,
    name,
    kind: 'metrics',
    trees: [{ prefix: '', restoreTo: '', files, reader: localFileReader(snapshot) }],
    source: { snapshots: ['S1'] },
    counted: { counts: { series: 1, samples: 2 } },
    createdAt: new Date('2026-11-21T17:45:06Z'),
    ...extra,
  });
}

describe('vmbackup layout', () => {
  it('names parts with 16-digit upper-case hex and parses them back', () => {
    const key = partKey({ relPath: 'data/small/p/values.bin', fileSize: 1401, offset: 0, size: 1401 });
    expect(key).to.equal('data/small/p/values.bin/0000000000000579_0000000000000000_0000000000000579');
    expect(parsePartKey(key)).to.deep.equal({ relPath: 'data/small/p/values.bin', fileSize: 1401, offset: 0, size: 1401 });
    expect(parsePartKey('x/0000000000000579_0000000000000000_000000000000057a')).to.equal(undefined);
  });

  it('splits files into 1 GiB parts and a zero-byte file into one empty part', () => {
    const gib = 1024 ** 3;
    expect(splitParts('f', 2 * gib + 5).map((p) => [p.offset, p.size])).to.deep.equal([[0, gib], [gib, gib], [2 * gib, 5]]);
    expect(splitParts('f', 0)).to.deep.equal([{ relPath: 'f', fileSize: 0, offset: 0, size: 0 }]);
  });

  it('refuses paths that could escape a restore target', () => {
    for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a//b', 'a\\b', './a', '']) expect(() => checkRelPath(bad)).to.throw(/unsafe/);
    expect(checkRelPath('data/small/x')).to.equal('data/small/x');
  });

  it('lists a snapshot through its symlinks and skips lock files', async () => {
    const { snapshot } = makeSnapshot();
    const files = (await listSnapshotFiles(snapshot)).map((f) => f.path);
    expect(files).to.deep.equal([
      'data/small/2026_11/PART1/empty.bin',
      'data/small/2026_11/PART1/index.bin',
      'data/small/2026_11/PART1/values.bin',
      'data/small/2026_11/parts.json',
      'metadata/minTimestampForCompositeIndex',
    ]);
  });

  it('with the data directory given, the reader opens only files inside it: a link swapped in after the listing is refused, not read', async () => {
    const { dataDir, snapshot } = makeSnapshot();
    const files = await listSnapshotFiles(snapshot, dataDir);
    const secret = join(tmp('elsewhere-'), 'token');
    writeFileSync(secret, 'index'); // the listed size: only the check stops it
    const listed = join(dataDir, 'data', 'small', 'snapshots', 'S1', '2026_11', 'PART1', 'index.bin');
    rmSync(listed);
    symlinkSync(secret, listed);
    const index = files.filter((f) => f.path.endsWith('index.bin'));
    const read = async (reader: FileReader) => {
      const chunks: Buffer[] = [];
      for await (const entry of reader.read(index)) for await (const c of entry.stream) chunks.push(Buffer.from(c));
      return Buffer.concat(chunks).toString();
    };
    const err = (await read(localFileReader(snapshot, dataDir)).catch((e: Error) => e)) as Error;
    expect(err.message).to.equal(
      `snapshot path data/small/2026_11/PART1/index.bin → ${secret} resolves to ${secret}, outside the data directory ${dataDir}: a database snapshot links only inside it; remove that link from the data volume`,
    );
    expect(await read(localFileReader(snapshot)), 'without a data directory, links are followed as listed').to.equal('index');
  });

  it('with the data directory given, a link out of it fails the listing instead of copying that file', async () => {
    const { dataDir, snapshot } = makeSnapshot();
    expect((await listSnapshotFiles(snapshot, dataDir)).length, 'the links inside the data directory are fine').to.equal(5);
    const secret = join(tmp('elsewhere-'), 'token');
    writeFileSync(secret, 'not for the backup');
    symlinkSync(secret, join(dataDir, 'data', 'small', 'snapshots', 'S1', '2026_11', 'PART1', 'planted.bin'));
    const err = (await listSnapshotFiles(snapshot, dataDir).catch((e: Error) => e)) as Error;
    expect(err.message).to.equal(
      `snapshot path data/small/2026_11/PART1/planted.bin → ${secret} resolves to ${secret}, outside the data directory ${dataDir}: a database snapshot links only inside it; remove that link from the data volume`,
    );
  });

  it('a snapshot link that leads nowhere (data this process cannot see) fails the listing, naming the link', async () => {
    const { snapshot } = makeSnapshot();
    // As when data/big is a volume of its own that the companion does not mount.
    symlinkSync('../../../data/big/snapshots/S1', join(snapshot, 'data', 'big'));
    await listSnapshotFiles(snapshot).then(
      () => expect.fail('listed'),
      (err: Error) =>
        expect(err.message).to.equal(
          'snapshot link data/big → ../../../data/big/snapshots/S1 leads nowhere here: the data it links to is not visible to this process; ' +
            "mount the database's whole data directory (including any volume mounted inside it, e.g. at data/big) where the snapshot is read",
        ),
    );
  });
});

describe('engine: backup, restore, verify', () => {
  it('writes the vmbackup tree, the manifest with checksums, and the markers last', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    const manifest = await backupOf(store, snapshot, 'b1');
    const keys = [...store.objects.keys()].sort();
    expect(keys).to.include('b1/data/small/2026_11/PART1/values.bin/00000000000493E0_0000000000000000_00000000000493E0');
    expect(keys).to.include('b1/data/small/2026_11/PART1/empty.bin/0000000000000000_0000000000000000_0000000000000000');
    expect(keys).to.include.members(['b1/backup_complete.ignore', 'b1/backup_metadata.ignore', `b1/${MANIFEST_KEY}`, `b1/${COMPLETE_KEY}`]);
    expect(store.objects.get('b1/backup_complete.ignore')!.length).to.equal(0);
    expect(JSON.parse(store.objects.get('b1/backup_metadata.ignore')!.toString()).created_at).to.equal('2026-11-21T17:45:06Z');
    expect(manifest.totals).to.include({ files: 5, bytesCopied: 0 });
    expect(manifest.trees[0]!.files.find((f) => f.path.endsWith('index.bin'))!.sha256).to.equal(sha256Of('index'));
    expect((await openBackup(store, 'b1')).name).to.equal('b1');
  });

  it('a listing that repeats an entry (a misbehaving server) deletes none of the backup\'s objects as stale', async () => {
    const { snapshot } = makeSnapshot();
    const store = new (class extends MemoryStore {
      override async *list(prefix: string) {
        for await (const o of super.list(prefix)) {
          yield o;
          yield o;
        }
      }
    })();
    await backupOf(store, snapshot, 'b1');
    const restored = tmp('restore-');
    await restoreBackup({ store, name: 'b1', dataDir: join(restored, 'data') });
    expect(readFileSync(join(restored, 'data', 'data', 'small', '2026_11', 'PART1', 'index.bin'), 'utf8')).to.equal('index');
    expect((await verifyBackup(store, 'b1')).problems).to.deep.equal([]);
  });

  it('counts may arrive while the files upload; a failed count leaves the backup complete, recording why', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    let answer!: (c: BackupCounts) => void;
    const later = backupOf(store, snapshot, 'late', { counted: new Promise((resolve) => (answer = resolve)) });
    setTimeout(() => answer({ counts: { series: 3, samples: 4 }, countedFrom: '2026-10-21T18:00:00.000Z' }), 20);
    const late = await later;
    expect(late.counts).to.deep.equal({ series: 3, samples: 4 });
    expect(late.countedFrom).to.equal('2026-10-21T18:00:00.000Z');
    expect((await backupOf(store, snapshot, 'all')).countedFrom, 'no start: counted from the first sample').to.equal(undefined);

    const failed = await backupOf(store, snapshot, 'nocount', { counted: pendingCounts(Promise.reject(new Error('the query exceeded -search.maxQueryDuration'))) });
    expect(failed.counts).to.deep.equal({});
    expect(failed.countsError).to.equal('the query exceeded -search.maxQueryDuration');
    expect((await openBackup(store, 'nocount')).countsError).to.equal(failed.countsError);
  });

  it('restores into an empty directory with identical bytes and no marker left', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    await backupOf(store, snapshot, 'b1');
    const target = join(tmp('restore-'), 'data');
    const res = await restoreBackup({ store, name: 'b1', dataDir: target });
    expect(res.files).to.equal(5);
    expect(readFileSync(join(target, 'data/small/2026_11/PART1/values.bin')).equals(Buffer.alloc(300_000, 7))).to.equal(true);
    expect(readFileSync(join(target, 'metadata/minTimestampForCompositeIndex'), 'utf8')).to.equal('12345678');
    expect(existsSync(join(target, RESTORE_MARKER))).to.equal(false);
  });

  it('maxBytesPerSecond paces the uploads of a backup and the downloads of a restore, copies aside', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    // About 300 KB uploaded at 256 KiB/s: at least a second, less the 50 ms burst.
    let started = performance.now();
    // Progress counts bytes as the limiter lets them go: never ahead of the rate (plus the burst and one 64 KiB piece).
    let ahead = 0;
    const onProgress = (p: { bytesUploaded: number }) => {
      ahead = Math.max(ahead, p.bytesUploaded - ((performance.now() - started) / 1000) * 256 * 1024);
    };
    const manifest = await backupOf(store, snapshot, 'slow', { maxBytesPerSecond: 256 * 1024, onProgress });
    const uploadMs = performance.now() - started;
    expect(uploadMs).to.be.at.least((manifest.totals.bytesUploaded / (256 * 1024)) * 1000 - 60);
    expect(ahead, 'progress ahead of the paced rate').to.be.below(0.05 * 256 * 1024 + 64 * 1024 + 1);
    // Unchanged files are copied server-side: no bytes pass, so the limit does not slow the copy.
    started = performance.now();
    const next = await backupOf(store, snapshot, 'copied', { base: { name: 'slow', manifest }, maxBytesPerSecond: 256 * 1024 });
    expect(next.totals.bytesCopied).to.be.greaterThan(290_000);
    expect(performance.now() - started).to.be.below(uploadMs / 2);

    const target = join(tmp('restore-'), 'data');
    started = performance.now();
    const res = await restoreBackup({ store, name: 'slow', dataDir: target, maxBytesPerSecond: 256 * 1024 });
    expect(performance.now() - started).to.be.at.least((res.bytes / (256 * 1024)) * 1000 - 60);
    expect(readFileSync(join(target, 'data/small/2026_11/PART1/values.bin')).equals(Buffer.alloc(300_000, 7))).to.equal(true);
  });

  it('progress is reported every second while one large file transfers and while the counts are awaited, not only per file', async () => {
    const { snapshot } = makeSnapshot();
    // A file store: it reads objects back in chunks, as S3 does (the memory store hands over each whole).
    const store = new FileStore(tmp('progress-'));
    // values.bin (300 KB) at 100 KiB/s: about 3 s in which no file finishes.
    const seen: Array<{ at: number; phase: string; filesDone: number; bytesDone: number }> = [];
    const record = (p: Progress) => seen.push({ at: performance.now(), phase: p.phase, filesDone: p.filesDone, bytesDone: p.bytesDone });
    let releaseCounts!: (c: BackupCounts) => void;
    const counts = new Promise<BackupCounts>((r) => (releaseCounts = r));
    const backup = backupOf(store, snapshot, 'paced', { maxBytesPerSecond: 100 * 1024, counted: pendingCounts(counts), onProgress: record });
    // Counting: every file is written, and reports go on while the database counts.
    for (let i = 0; i < 600 && !seen.some((p) => p.phase === 'counting'); i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 1300));
    releaseCounts({ counts: { series: 1, samples: 2 } });
    await backup;
    const during = (phase: string) => seen.filter((p) => p.phase === phase);
    const uploading = during('uploading');
    // While values.bin uploads, reports come that no finished file caused, and they show its bytes grow.
    const midFile = (ps: Array<{ filesDone: number; bytesDone: number }>) => ps.filter((p, i) => i > 0 && p.filesDone === ps[i - 1]!.filesDone);
    const grew = (ps: Array<{ filesDone: number; bytesDone: number }>) => ps.some((p, i) => i > 0 && p.filesDone === ps[i - 1]!.filesDone && p.bytesDone > ps[i - 1]!.bytesDone);
    expect(midFile(uploading).length, 'reports within one file').to.be.at.least(2);
    expect(grew(uploading), 'bytes counted within one file').to.equal(true);
    const gaps = uploading.slice(1).map((p, i) => p.at - uploading[i]!.at);
    expect(Math.max(...gaps), 'the longest silence while uploading (ms)').to.be.below(1500);
    expect(during('counting').length, 'reports while counting').to.be.at.least(2);
    expect(seen.at(-1)?.phase).to.equal('done');

    // The restore, paced alike, reports within its one large file too; none after it returned.
    const restored: Array<{ at: number; filesDone: number; bytesDone: number }> = [];
    await restoreBackup({ store, name: 'paced', dataDir: join(tmp('restore-'), 'data'), maxBytesPerSecond: 100 * 1024, onProgress: (p) => restored.push({ at: performance.now(), filesDone: p.filesDone, bytesDone: p.bytesDone }) });
    const reports = restored.length;
    expect(midFile(restored).length, 'restore reports within one file').to.be.at.least(2);
    expect(grew(restored), 'restored bytes counted within one file').to.equal(true);
    await new Promise((r) => setTimeout(r, 1200));
    expect(restored.length, 'the heartbeat stopped with the restore').to.equal(reports);
  });

  it('a backup folder is one segment, and never another kind\'s or vmbackup\'s; a re-run into the newest backup keeps unchanged files in place', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    const first = await backupOf(store, snapshot, 'b1');
    expect((await backupOf(store, snapshot, 'b1/nested').catch((e: Error) => e) as Error).message).to.match(/backup name "b1\/nested" has a "\/"/);
    for (const odd of [' ', 'a b', 'line\nbreak', '?q', '#h', '%2e%2e', '-x', 'x'.repeat(256)]) {
      const err = (await backupOf(store, snapshot, odd).catch((e: Error) => e)) as Error;
      expect(err.message, JSON.stringify(odd)).to.match(/may hold only letters, digits, "\.", "_" and "-"|backup name/);
    }
    expect([...store.objects.keys()].every((k) => k.startsWith('b1/')), 'nothing written for an odd name').to.equal(true);

    const before = new Map(store.objects);
    const logs = await backupOf(store, snapshot, 'b1', { kind: 'logs' }).catch((e: Error) => e);
    expect((logs as Error).message).to.equal(
      'memory://test/b1 holds a VictoriaMetrics backup; this VictoriaLogs backup would replace it: give this backup another name (--name), or each database a root of its own (--dst)',
    );
    expect(store.objects).to.deep.equal(before);
    store.objects.set('vmb/backup_complete.ignore', Buffer.alloc(0));
    store.objects.set('vmb/data/x/0000000000000001_0000000000000000_0000000000000001', Buffer.from('x'));
    expect(((await backupOf(store, snapshot, 'vmb').catch((e: Error) => e)) as Error).message).to.match(/vmb holds a complete vmbackup backup \(backup_complete\.ignore without our manifest\)/);
    expect(store.objects.has('vmb/data/x/0000000000000001_0000000000000000_0000000000000001')).to.equal(true);

    // As vmbackup into an existing -dst: the unchanged files are in place, nothing is copied or uploaded again.
    let copies = 0;
    const copy = store.copy.bind(store);
    store.copy = async (...args) => {
      copies++;
      return copy(...args);
    };
    const again = await backupOf(store, snapshot, 'b1', { base: { name: 'b1', manifest: first } });
    expect(copies).to.equal(0);
    expect(again.copiesRefused).to.equal(undefined);
    expect(again.totals.bytesCopied).to.be.greaterThan(290_000);
    expect((await openBackup(store, 'b1')).basedOn).to.equal('b1');
    expect((await verifyBackup(store, 'b1')).problems).to.deep.equal([]);
  });

  it("onFailure 'keep-journaled': a failed attempt that finished nothing leaves no objects and says so; a refused folder is left alone; the CLI's 'keep' leaves the folder, incomplete", async () => {
    const { snapshot } = makeSnapshot();
    const files = await listSnapshotFiles(snapshot);
    // A reader that gives the small files, then fails: some objects are written before the failure.
    const failing: FileReader = {
      async *read(list) {
        const inner = localFileReader(snapshot).read(list.filter((f) => f.size < 1000));
        for await (const entry of inner) yield entry;
        throw new Error('the stream broke');
      },
    };
    // One that fails before any file is finished: nothing worth keeping.
    const broken: FileReader = {
      async *read() {
        throw new Error('the stream broke');
      },
    };
    const attempt = (store: MemoryStore, extra: Partial<BackupRequest>, reader = failing) =>
      backupOf(store, snapshot, 'b2', { trees: [{ prefix: '', restoreTo: '', files, reader }], ...extra }).catch((e: Error) => e);

    const kept = new MemoryStore();
    expect(((await attempt(kept, {})) as Error).message).to.equal('the stream broke');
    expect([...kept.objects.keys()].filter((k) => k.startsWith('b2/')).length, 'the CLI keeps what it wrote').to.be.greaterThan(0);
    expect((await listBackups(kept)).find((b) => b.name === 'b2')?.complete).to.equal(false);

    const removed = new MemoryStore();
    const err = (await attempt(removed, { onFailure: 'keep-journaled' }, broken)) as Error;
    expect(err.message).to.match(/^the stream broke; the [1-9]\d* object\(s\) this attempt wrote to memory:\/\/test\/b2\/ were removed$/);
    expect([...removed.objects.keys()]).to.deep.equal([]);

    // The removal fails too: the error says what is left and that nothing else will remove it.
    const stuck = new MemoryStore();
    const markersFirst = stuck.delete.bind(stuck);
    let deletes = 0;
    // The first delete (an earlier attempt's complete markers) goes through; the removal is refused.
    stuck.delete = async (keys) => {
      if (deletes++ === 0) return markersFirst(keys);
      throw new Error('AccessDenied');
    };
    expect(((await attempt(stuck, { onFailure: 'keep-journaled' }, broken)) as Error).message).to.match(
      /^the stream broke; the objects this attempt wrote to memory:\/\/test\/b2\/ could not be removed \(AccessDenied\): they hold no complete backup, and nothing else will remove them/,
    );

    // Refused by the guards: the folder is another kind's backup, and it is not touched.
    const other = new MemoryStore();
    await backupOf(other, snapshot, 'b2');
    const before = new Map(other.objects);
    expect(((await backupOf(other, snapshot, 'b2', { kind: 'logs', onFailure: 'keep-journaled' }).catch((e: Error) => e)) as Error).message).to.match(/holds a VictoriaMetrics backup/);
    expect(other.objects).to.deep.equal(before);
  });

  it('an interrupted restore resumes under the same resume token: whole files stay, a cut one is fetched again; another token is refused', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    await backupOf(store, snapshot, 'b1');
    const target = join(tmp('restore-'), 'data');
    await restoreBackup({ store, name: 'b1', dataDir: target, resumeToken: 'plan abc' });
    // What an interruption leaves: the marker of this restore, one file cut short, one not yet there.
    writeFileSync(join(target, RESTORE_MARKER), 'plan abc');
    const values = join(target, 'data/small/2026_11/PART1/values.bin');
    writeFileSync(values, Buffer.alloc(1000, 7));
    rmSync(join(target, 'metadata/minTimestampForCompositeIndex'));

    for (const resumeToken of ['plan other', undefined]) {
      const err = await restoreBackup({ store, name: 'b1', dataDir: target, ...(resumeToken ? { resumeToken } : {}) }).catch((e: Error) => e);
      expect((err as Error).message, String(resumeToken)).to.match(/is not empty/);
    }
    // Never under a running database, not even to resume (`flock` holds the lock as a database does).
    const holder = spawn('flock', ['-o', '-x', join(target, 'flock.lock'), 'sleep', '60'], { stdio: 'ignore', detached: true });
    try {
      for (let i = 0; (await lockHolderOf(target)) === undefined; i++) {
        if (i > 100) throw new Error('flock did not take the lock');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const err = await restoreBackup({ store, name: 'b1', dataDir: target, resumeToken: 'plan abc' }).catch((e: Error) => e);
      expect((err as Error).message).to.match(/is in use by a running database \(process \d+ holds its flock\.lock\): stop the database first/);
    } finally {
      process.kill(-holder.pid!); // flock and its sleep
      await once(holder, 'exit');
    }
    const res = await restoreBackup({ store, name: 'b1', dataDir: target, resumeToken: 'plan abc' });
    expect(res.resumedFiles).to.equal(3);
    expect(readFileSync(values).equals(Buffer.alloc(300_000, 7))).to.equal(true);
    expect(readFileSync(join(target, 'metadata/minTimestampForCompositeIndex'), 'utf8')).to.equal('12345678');
    expect(existsSync(join(target, RESTORE_MARKER))).to.equal(false);
  });

  it('chown gives the data directory and everything restored to the database\'s user, also files a resumed run kept (as root; otherwise it says what it needs)', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    await backupOf(store, snapshot, 'b1');
    const target = join(tmp('restore-'), 'data');
    mkdirSync(target, { mode: 0o755 }); // as the kubelet creates a hostPath: root's
    // CI runs the tests as root (scripts/test.sh): there the branch below must not be the one taken.
    if (process.env.REQUIRE_INTEGRATION === '1') expect(process.getuid?.(), 'REQUIRE_INTEGRATION=1 runs as root, so that chown is really exercised').to.equal(0);
    if (process.getuid?.() !== 0) {
      const err = await restoreBackup({ store, name: 'b1', dataDir: target, chown: { uid: 4242 } }).catch((e: Error) => e);
      expect((err as Error).message).to.match(/cannot give .* to user 4242 \(EPERM\): giving the restored files to the database's user needs root with the CHOWN capability/);
      return;
    }
    // A resumed run: one file kept from the interrupted one (root's), the rest downloaded.
    await restoreBackup({ store, name: 'b1', dataDir: target, resumeToken: 'plan abc' });
    writeFileSync(join(target, RESTORE_MARKER), 'plan abc');
    rmSync(join(target, 'metadata/minTimestampForCompositeIndex'));
    const res = await restoreBackup({ store, name: 'b1', dataDir: target, resumeToken: 'plan abc', chown: { uid: 4242, gid: 4343 } });
    expect(res.resumedFiles).to.equal(4);
    expect(res.owner).to.deep.equal({ uid: 4242, gid: 4343 });
    const owners = new Set<string>();
    const walk = (p: string): void => {
      const st = lstatSync(p);
      owners.add(`${st.uid}:${st.gid}`);
      if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
    };
    walk(target);
    expect([...owners]).to.deep.equal(['4242:4343']);
    // Without a group the restoring user's stays.
    const other = join(tmp('restore-'), 'data');
    await restoreBackup({ store, name: 'b1', dataDir: other, chown: { uid: 4242 } });
    const st = lstatSync(join(other, 'data/small/2026_11/PART1/values.bin'));
    expect([st.uid, st.gid]).to.deep.equal([4242, process.getgid!()]);
  });

  it('refuses a non-empty target and leaves it untouched; --replace moves it aside', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    await backupOf(store, snapshot, 'b1');
    const parent = tmp('restore-');
    const target = join(parent, 'data');
    mkdirSync(target);
    writeFileSync(join(target, 'precious'), 'keep me');
    let err: Error | undefined;
    await restoreBackup({ store, name: 'b1', dataDir: target }).catch((e: Error) => (err = e));
    expect(err?.message).to.match(/not empty .*--replace/);
    expect(readdirSync(target)).to.deep.equal(['precious']);
    // Nothing in it is a database's: a wrong path (a typo, /var/lib) is not moved aside.
    const notDb = (await restoreBackup({ store, name: 'b1', dataDir: target, replace: true }).catch((e: Error) => e)) as Error;
    expect(notDb.message).to.equal(
      `data directory ${target} is not empty (1 entries, e.g. precious) and holds nothing of a VictoriaMetrics or VictoriaLogs data directory ` +
        '(flock.lock, partitions/, indexdb/, data/small, data/big or data/indexdb, restore-in-progress): a replace moves only a database\'s directory aside, not this one. ' +
        'Check the data directory\'s path; if it is right, move its contents away yourself and restore into it empty',
    );
    expect(readdirSync(target)).to.deep.equal(['precious']);
    // A data/ folder alone does not make it one; VictoriaMetrics' data/small does.
    mkdirSync(join(target, 'data'));
    expect(((await restoreBackup({ store, name: 'b1', dataDir: target, replace: true }).catch((e: Error) => e)) as Error).message).to.match(/holds nothing of a VictoriaMetrics/);
    // Each of what a database (or a restore of ours) leaves makes it one, beside lost+found too.
    for (const entries of [['flock.lock'], ['partitions/20261120'], ['indexdb/18EA'], ['data/big'], ['data/indexdb'], [RESTORE_MARKER], ['.victoria-restored.json'], ['.replaced-2026-11-23T00-00-00-000Z/x'], ['lost+found/', 'flock.lock']]) {
      const dir = tmp('replace-kinds-');
      for (const e of entries) {
        if (e.endsWith('/') || !e.includes('.') || e.includes('/')) mkdirSync(join(dir, e), { recursive: true });
        else writeFileSync(join(dir, e), '');
      }
      expect(await checkDataDir(dir, { replace: true }), entries.join(' ')).to.equal('replace');
    }
    mkdirSync(join(target, 'data/small'));
    const res = await restoreBackup({ store, name: 'b1', dataDir: target, replace: true });
    expect(readFileSync(join(res.movedAside!, 'precious'), 'utf8')).to.equal('keep me');
    expect(existsSync(join(target, 'data/small/2026_11/parts.json'))).to.equal(true);
    // A fresh file system's lost+found is not data: the restore goes beside it, and leaves it.
    const mounted = join(parent, 'mounted');
    mkdirSync(join(mounted, 'lost+found'), { recursive: true });
    await restoreBackup({ store, name: 'b1', dataDir: mounted });
    expect(existsSync(join(mounted, 'data/small/2026_11/parts.json'))).to.equal(true);
    expect(existsSync(join(mounted, 'lost+found'))).to.equal(true);
    // Only a real directory of that name: a link is data to refuse (it could lead writes elsewhere).
    const linked = join(parent, 'linked');
    mkdirSync(linked);
    symlinkSync(tmp('elsewhere-'), join(linked, 'lost+found'));
    const refused = (await restoreBackup({ store, name: 'b1', dataDir: linked }).catch((e: Error) => e)) as Error;
    expect(refused.message).to.match(/not empty/);
    expect(readdirSync(linked)).to.deep.equal(['lost+found']);
    // A file where the directory should be: named, with or without --replace, and left alone.
    const file = join(parent, 'a-file');
    writeFileSync(file, 'not a directory');
    for (const replace of [false, true]) {
      const notDir = (await restoreBackup({ store, name: 'b1', dataDir: file, replace }).catch((e: Error) => e)) as Error;
      expect(notDir.message).to.equal(`data directory ${file} is a file, not a directory: point --data-dir at the database's -storageDataPath directory, or an empty or new one`);
      expect(readFileSync(file, 'utf8')).to.equal('not a directory');
    }
  });

  it('--replace of a data directory that is a symbolic link: the data it points to is moved aside and restored there, the link stays', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    await backupOf(store, snapshot, 'b1');
    const parent = tmp('restore-');
    const disk = join(parent, 'disk/vm');
    mkdirSync(disk, { recursive: true });
    writeFileSync(join(disk, 'precious'), 'keep me');
    writeFileSync(join(disk, 'flock.lock'), ''); // a stopped database's
    const link = join(parent, 'vm');
    symlinkSync(disk, link);
    const res = await restoreBackup({ store, name: 'b1', dataDir: link, replace: true });
    expect(lstatSync(link).isSymbolicLink()).to.equal(true);
    expect(res.movedAside).to.match(new RegExp(`^${disk}-replaced-`));
    expect(readFileSync(join(res.movedAside!, 'precious'), 'utf8')).to.equal('keep me');
    expect(existsSync(join(disk, 'data/small/2026_11/parts.json'))).to.equal(true);
  });

  it('a folder holding anything but a backup of ours is refused and left untouched: other files, backups nested below it, an unreadable marker', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    await backupOf(store, snapshot, 'b1');
    await backupOf(store, snapshot, 'b2');
    // A mistyped --dst/--name pair: the root's parent as the root, the old root's name as the name.
    const parent = new MemoryStore();
    for (const [key, value] of store.objects) parent.objects.set(`root/${key}`, value);
    parent.objects.set('notes/readme.txt', Buffer.from('keep me'));
    for (const name of ['root', 'notes']) {
      const before = new Map(parent.objects);
      const err = (await backupOf(parent, snapshot, name).catch((e: Error) => e)) as Error;
      expect(err.message).to.match(new RegExp(`^memory://test/${name}/ is not empty and holds no backup of ours \\(\\d+ object\\(s\\), e\\.g\\. memory://test/${name}/.+\\): a backup there would delete them as stale objects, so nothing was written`));
      expect(parent.objects).to.deep.equal(before);
    }
    // The root itself a backup: nothing is written inside it.
    const backupAsRoot = new MemoryStore();
    for (const [key, value] of store.objects) if (key.startsWith('b1/')) backupAsRoot.objects.set(key.slice('b1/'.length), value);
    const nested = (await backupOf(backupAsRoot, snapshot, 'fresh').catch((e: Error) => e)) as Error;
    expect(nested.message).to.match(/^memory:\/\/test is itself a backup \(it holds victoria_complete\.ignore\): a backup there would become part of it/);
    expect([...backupAsRoot.objects.keys()].some((k) => k.startsWith('fresh/'))).to.equal(false);
    // An unfinished one too (an interrupted backup has only its in-progress marker): its re-run would delete the nested backup as stale.
    const unfinished = new MemoryStore();
    unfinished.objects.set(IN_PROGRESS_KEY, store.objects.get(`b1/${MANIFEST_KEY}`)!);
    const inUnfinished = (await backupOf(unfinished, snapshot, 'fresh').catch((e: Error) => e)) as Error;
    expect(inUnfinished.message).to.match(/^memory:\/\/test is itself a backup \(it holds victoria_in_progress\.ignore\): a backup there would become part of it/);
    // A root deeper inside a backup (file://, which looks at the folders above the root).
    const dir = tmp('vpv-inside-');
    await backupOf(new FileStore(dir), snapshot, 'b1');
    const inner = new FileStore(join(dir, 'b1', 'data', 'deeper'));
    const inside = (await backupOf(inner, snapshot, 'fresh').catch((e: Error) => e)) as Error;
    expect(inside.message).to.equal(
      `${inner.location} is inside the backup ${pathToFileURL(join(dir, 'b1')).href} (it holds victoria_complete.ignore): a backup there would become part of it; ` +
        'give the folder of the backups as the root (--dst), outside any backup',
    );
    expect(existsSync(join(dir, 'b1', 'data', 'deeper'))).to.equal(false);
    parent.objects.set('odd/victoria_in_progress.ignore', Buffer.from('{'));
    const odd = (await backupOf(parent, snapshot, 'odd').catch((e: Error) => e)) as Error;
    expect(odd.message).to.match(/^memory:\/\/test\/odd\/victoria_in_progress\.ignore is not JSON: cannot tell what this folder holds/);
    expect(parent.objects.get('odd/victoria_in_progress.ignore')!.toString()).to.equal('{');
  });

  it('an interrupted backup has no complete marker, restore refuses it, and a re-run completes it', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    store.failPut = (key) => key.includes('values.bin');
    await backupOf(store, snapshot, 'b1').catch(() => undefined);
    // Recognisably ours, of its kind, so that a re-run may replace it.
    expect(JSON.parse(store.objects.get(`b1/${IN_PROGRESS_KEY}`)!.toString())).to.include({ kind: 'metrics' });
    expect(store.objects.has(`b1/${COMPLETE_KEY}`)).to.equal(false);
    expect(store.objects.has('b1/backup_complete.ignore')).to.equal(false);
    let err: Error | undefined;
    await restoreBackup({ store, name: 'b1', dataDir: join(tmp('r-'), 'd') }).catch((e: Error) => (err = e));
    expect(err?.message).to.match(/incomplete/);
    expect((await listBackups(store)).map((b) => [b.name, b.complete])).to.deep.equal([['b1', false]]);
    store.failPut = undefined;
    store.objects.set('b1/data/stale-file/0000000000000001_0000000000000000_0000000000000001', Buffer.from('x'));
    await backupOf(store, snapshot, 'b1');
    expect(store.objects.has('b1/data/stale-file/0000000000000001_0000000000000000_0000000000000001')).to.equal(false);
    expect(store.objects.has(`b1/${IN_PROGRESS_KEY}`), 'no in-progress marker on a complete backup').to.equal(false);
    expect((await verifyBackup(store, 'b1')).ok).to.equal(true);
  });

  describe('resuming an interrupted backup (journal)', () => {
    const journalKeys = (store: MemoryStore, name: string) => [...store.objects.keys()].filter((k) => k.startsWith(`${name}/${JOURNAL_PREFIX}`));
    /** Records the keys put while it runs. */
    const recordPuts = (store: MemoryStore): string[] => {
      const keys: string[] = [];
      const put = store.put.bind(store);
      store.put = async (key, body, size) => {
        keys.push(key);
        return put(key, body, size);
      };
      return keys;
    };

    it('a re-run into the name keeps the files the failed run finished, uploads the rest, and leaves no journal in the complete backup', async () => {
      const { snapshot, dataDir } = makeSnapshot();
      const store = new MemoryStore();
      store.failPut = (key) => key.includes('values.bin');
      const err = (await backupOf(store, snapshot, 'b1').catch((e: Error) => e)) as Error;
      expect(err.message).to.match(/injected failure writing b1\/data\/small\/2026_11\/PART1\/values\.bin/);
      expect(leftIncomplete(err), 'the folder stays for a re-run').to.equal(true);
      expect(journalKeys(store, 'b1'), 'the failed run wrote down what it finished').to.have.length.greaterThan(0);
      const journal = await readJournal(store, 'b1');
      expect([...journal.get('')!.keys()].sort()).to.deep.equal([
        'data/small/2026_11/PART1/empty.bin',
        'data/small/2026_11/PART1/index.bin',
        'data/small/2026_11/parts.json',
        'metadata/minTimestampForCompositeIndex',
      ]);
      expect(journal.get('')!.get('data/small/2026_11/PART1/index.bin')!.sha256).to.equal(sha256Of('index'));

      store.failPut = undefined;
      const puts = recordPuts(store);
      const manifest = await backupOf(store, snapshot, 'b1');
      // Immutable files stay; the mutable ones (parts.json, metadata/) are written again, as in an incremental.
      expect(manifest.resumed).to.deep.equal({ files: 2, bytes: 'index'.length });
      expect(puts.filter((k) => k.includes('/PART1/')).map((k) => k.split('/')[5])).to.deep.equal(['values.bin']);
      expect(manifest.totals).to.deep.include({ files: 5, bytesUploaded: 300_000 + '{"Small":["PART1"]}'.length + '12345678'.length, bytesCopied: 0 });
      expect(journalKeys(store, 'b1'), 'a complete backup holds no journal').to.deep.equal([]);
      expect(store.objects.has(`b1/${COMPLETE_KEY}`)).to.equal(true);
      expect((await verifyBackup(store, 'b1')).ok).to.equal(true);
      const target = join(tmp('r-'), 'd');
      await restoreBackup({ store, name: 'b1', dataDir: target });
      expect(readFileSync(join(target, 'data', 'small', '2026_11', 'PART1', 'index.bin'), 'utf8')).to.equal('index');
      expect(readFileSync(join(target, 'data', 'small', '2026_11', 'PART1', 'values.bin')).equals(Buffer.alloc(300_000, 7))).to.equal(true);
      expect(readFileSync(join(dataDir, 'data', 'small', 'snapshots', 'S1', '2026_11', 'PART1', 'values.bin')).length).to.equal(300_000);
    });

    it('a journaled file is written again when its object is gone or of another size, or the file has another mtime', async () => {
      const { snapshot, dataDir } = makeSnapshot();
      const store = new MemoryStore();
      store.failPut = (key) => key.includes('values.bin');
      await backupOf(store, snapshot, 'b1').catch(() => undefined);
      store.failPut = undefined;
      const indexKey = [...store.objects.keys()].find((k) => k.includes('/PART1/index.bin/'))!;
      const emptyKey = [...store.objects.keys()].find((k) => k.includes('/PART1/empty.bin/'))!;
      store.objects.delete(indexKey);
      utimesSync(join(dataDir, 'data', 'small', 'snapshots', 'S1', '2026_11', 'PART1', 'empty.bin'), new Date(), new Date('2026-01-01T00:00:00Z'));
      const puts = recordPuts(store);
      const manifest = await backupOf(store, snapshot, 'b1');
      expect(manifest.resumed, 'nothing kept').to.equal(undefined);
      expect(puts).to.include.members([indexKey, emptyKey]);
      expect((await verifyBackup(store, 'b1')).ok).to.equal(true);

      // An object cut short (written by hand, or by another tool) is not kept either.
      store.failPut = (key) => key.includes('values.bin');
      await backupOf(store, snapshot, 'b2').catch(() => undefined);
      store.failPut = undefined;
      const cut = [...store.objects.keys()].find((k) => k.startsWith('b2/') && k.includes('/PART1/index.bin/'))!;
      store.objects.set(cut, Buffer.from('ind'));
      const again = await backupOf(store, snapshot, 'b2');
      expect(again.resumed).to.deep.equal({ files: 1, bytes: 0 });
      expect(store.objects.get(cut)!.toString()).to.equal('index');
      expect((await verifyBackup(store, 'b2')).ok).to.equal(true);
    });

    it('an interrupted run (its signal aborted) still writes down what it finished', async () => {
      const { snapshot } = makeSnapshot();
      const files = await listSnapshotFiles(snapshot);
      const controller = new AbortController();
      // The small files, then a stop while the large one is next.
      const stopping: FileReader = {
        async *read(list) {
          yield* localFileReader(snapshot).read(list.filter((f) => f.size < 1000));
          controller.abort(new Error('stopped by SIGINT'));
          yield* localFileReader(snapshot).read(list.filter((f) => f.size >= 1000));
        },
      };
      const store = new MemoryStore();
      const err = (await backupOf(store, snapshot, 'b1', { trees: [{ prefix: '', restoreTo: '', files, reader: stopping }], signal: controller.signal }).catch((e: Error) => e)) as Error;
      expect(err.message).to.equal('stopped by SIGINT');
      expect(leftIncomplete(err)).to.equal(true);
      expect((await readJournal(store, 'b1')).get('')?.size).to.equal(4);
    });

    it('VictoriaLogs: the files of each partition are kept by its own tree, also where two partitions hold the same paths', async () => {
      const a = makeSnapshot();
      const b = makeSnapshot();
      writeFileSync(join(b.dataDir, 'data', 'small', 'snapshots', 'S1', '2026_11', 'PART1', 'index.bin'), 'INDEX');
      const trees = async () => [
        { prefix: 'partitions/20261120/', restoreTo: 'partitions/20261120', files: await listSnapshotFiles(a.snapshot), reader: localFileReader(a.snapshot) },
        { prefix: 'partitions/20261121/', restoreTo: 'partitions/20261121', files: await listSnapshotFiles(b.snapshot), reader: localFileReader(b.snapshot) },
      ];
      const store = new MemoryStore();
      store.failPut = (key) => key.startsWith('l1/partitions/20261121/') && key.includes('values.bin');
      await backupOf(store, a.snapshot, 'l1', { kind: 'logs', trees: await trees() }).catch(() => undefined);
      store.failPut = undefined;
      const puts = recordPuts(store);
      const manifest = await backupOf(store, a.snapshot, 'l1', { kind: 'logs', trees: await trees() });
      // Both partitions' index.bin and empty.bin, and the first one's values.bin.
      expect(manifest.resumed).to.deep.equal({ files: 5, bytes: 300_000 + 10 });
      expect(puts.filter((k) => k.includes('/PART1/'))).to.have.length(1);
      expect(puts.find((k) => k.includes('/PART1/'))).to.match(/^l1\/partitions\/20261121\/.*values\.bin\//);
      expect(manifest.trees[1]!.files.find((f) => f.path.endsWith('index.bin'))!.sha256).to.equal(sha256Of('INDEX'));
      expect((await verifyBackup(store, 'l1')).ok).to.equal(true);
    });

    it('the journal left in a complete folder is passed over: a re-run into it goes by its manifest', async () => {
      const { snapshot } = makeSnapshot();
      const store = new MemoryStore();
      await backupOf(store, snapshot, 'b1');
      const index = (await listSnapshotFiles(snapshot)).find((f) => f.path.endsWith('index.bin'))!;
      const wrong = { path: index.path, size: index.size, mtimeMs: index.mtimeMs, sha256: 'f'.repeat(64), origin: 'uploaded' };
      store.objects.set(`b1/${JOURNAL_PREFIX}000000000000001_aaaaaaaa_000000.ignore`, Buffer.from(`${JSON.stringify({ prefix: '', file: wrong })}\n`));
      const manifest = await backupOf(store, snapshot, 'b1', { base: (await newestComplete(store))! });
      expect(manifest.resumed).to.equal(undefined);
      expect(manifest.trees[0]!.files.find((f) => f.path === index.path)!.sha256).to.equal(sha256Of('index'));
      expect(journalKeys(store, 'b1'), 'the left-over is removed with the re-run').to.deep.equal([]);
      expect((await verifyBackup(store, 'b1')).ok).to.equal(true);
    });

    it("onFailure 'keep-journaled' (Velero): a failed attempt keeps the files it finished and says so, or is removed when it finished none", async () => {
      const { snapshot } = makeSnapshot();
      const store = new MemoryStore();
      store.failPut = (key) => key.includes('values.bin');
      const err = (await backupOf(store, snapshot, 'v1', { onFailure: 'keep-journaled' }).catch((e: Error) => e)) as Error;
      const kept = '; the 4 file(s) this attempt finished stay in memory://test/v1/ (incomplete: never restored from) for the next backup to copy server-side instead of uploading them again; that backup removes the folder once it is complete';
      expect(err.message).to.match(/^injected failure writing v1\/data\/small\/2026_11\/PART1\/values\.bin/);
      expect(err.message.endsWith(kept)).to.equal(true);
      expect(attemptNote(err), 'kept apart for an item timeout that replaces the message').to.equal(kept);
      expect(store.objects.has(`v1/${COMPLETE_KEY}`)).to.equal(false);
      expect(journalKeys(store, 'v1')).to.have.length.greaterThan(0);

      // Finished nothing (the stream broke before the first file): nothing worth keeping, all removed.
      const files = await listSnapshotFiles(snapshot);
      const broken: FileReader = {
        async *read() {
          throw new Error('the stream broke');
        },
      };
      const empty = new MemoryStore();
      const none = (await backupOf(empty, snapshot, 'v1', { onFailure: 'keep-journaled', trees: [{ prefix: '', restoreTo: '', files, reader: broken }] }).catch((e: Error) => e)) as Error;
      expect(none.message).to.match(/^the stream broke; the [1-9]\d* object\(s\) this attempt wrote to memory:\/\/test\/v1\/ were removed$/);
      expect([...empty.objects.keys()]).to.deep.equal([]);
    });

    it('resumeFrom: the next backup under another name copies what the failed attempt finished from its folder, uploads the rest, and takes from a base first', async () => {
      const { snapshot, dataDir } = makeSnapshot();
      const store = new MemoryStore();
      store.failPut = (key) => key.includes('values.bin');
      await backupOf(store, snapshot, 'v1', { onFailure: 'keep-journaled' }).catch(() => undefined);
      store.failPut = undefined;

      // The catalog finds it: no complete marker, our in-progress marker of this kind, a journal.
      const incomplete: string[] = [];
      expect(await newestComplete(store, '', { onIncomplete: (name) => incomplete.push(name) })).to.equal(undefined);
      expect(incomplete).to.deep.equal(['v1']);
      expect((await failedAttempts(store, incomplete, 'metrics')).map((a) => [a.name, a.journaled])).to.deep.equal([['v1', true]]);
      expect(await failedAttempts(store, incomplete, 'logs'), 'not a logs backup to take over').to.deep.equal([]);

      const puts = recordPuts(store);
      const manifest = await backupOf(store, snapshot, 'v2', { onFailure: 'keep-journaled', resumeFrom: 'v1' });
      // The immutable files it finished are copied; values.bin and the mutable ones are uploaded.
      expect(manifest.resumedFrom).to.deep.equal({ backup: 'v1', files: 2, bytes: 'index'.length });
      expect(manifest.resumed).to.equal(undefined);
      expect(manifest.totals).to.deep.include({ files: 5, bytesCopied: 'index'.length });
      expect(puts.filter((k) => k.includes('/PART1/')).map((k) => k.split('/')[5])).to.deep.equal(['values.bin']);
      expect(manifest.trees[0]!.files.find((f) => f.path.endsWith('index.bin'))).to.deep.include({ origin: 'copied', sha256: sha256Of('index') });
      expect(journalKeys(store, 'v2'), 'a complete backup holds no journal').to.deep.equal([]);
      expect((await verifyBackup(store, 'v2')).ok).to.equal(true);
      const target = join(tmp('r-'), 'd');
      await restoreBackup({ store, name: 'v2', dataDir: target });
      expect(readFileSync(join(target, 'data', 'small', '2026_11', 'PART1', 'index.bin'), 'utf8')).to.equal('index');
      expect(readFileSync(join(target, 'data', 'small', '2026_11', 'PART1', 'values.bin')).equals(Buffer.alloc(300_000, 7))).to.equal(true);
      expect(store.objects.has(`v1/${IN_PROGRESS_KEY}`), 'the attempt is left for the caller to remove').to.equal(true);

      // A file the attempt holds with another mtime now is uploaded, and a base's unchanged files come from the base.
      utimesSync(join(dataDir, 'data', 'small', 'snapshots', 'S1', '2026_11', 'PART1', 'index.bin'), new Date(), new Date('2026-01-01T00:00:00Z'));
      const withBase = await backupOf(store, snapshot, 'v3', { onFailure: 'keep-journaled', resumeFrom: 'v1', base: (await newestComplete(store))! });
      expect(withBase.resumedFrom).to.equal(undefined);
      expect(withBase.basedOn).to.equal('v2');
      expect(withBase.trees[0]!.files.find((f) => f.path.endsWith('index.bin'))!.origin).to.equal('uploaded');
      expect(withBase.trees[0]!.files.find((f) => f.path.endsWith('values.bin'))!.origin).to.equal('copied');
      expect((await verifyBackup(store, 'v3')).ok).to.equal(true);
    });

    it('the journal writer writes nothing once another run took the folder; a write that fails keeps its entries for the next', async () => {
      const store = new MemoryStore();
      const entry = { path: 'data/x', size: 1, mtimeMs: 1, sha256: 'a'.repeat(64), origin: 'uploaded' as const };
      let owner: 'ours' | 'lost' | 'trouble' = 'trouble';
      const writer = new JournalWriter(store, 'b1', 1, 'run-1', async () => {
        if (owner === 'lost') throw new FolderTakenError('taken');
        if (owner === 'trouble') throw new Error('ECONNRESET');
      });
      writer.add('', entry);
      await writer.flush();
      expect(journalKeys(store, 'b1'), 'not written, kept').to.deep.equal([]);
      owner = 'ours';
      await writer.flush();
      expect((await readJournal(store, 'b1')).get('')!.get('data/x')).to.deep.equal(entry);
      owner = 'lost';
      writer.add('', { ...entry, path: 'data/y' });
      await writer.close(true);
      expect(journalKeys(store, 'b1')).to.have.length(1);
    });

    it('the journal: a later entry for a file wins, lines that are cut or not of its shape are passed over', async () => {
      const store = new MemoryStore();
      const file = (sha: string) => ({ path: 'data/x', size: 3, mtimeMs: 1, sha256: sha.repeat(64), origin: 'uploaded' });
      const segment = (lines: string[]) => Buffer.from(`${lines.join('\n')}\n`);
      store.objects.set(`b1/${JOURNAL_PREFIX}000000000000001_aaaaaaaa_000000.ignore`, segment([JSON.stringify({ prefix: '', file: file('a') }), '{"prefix":"","file":{"path":"data/y"']));
      store.objects.set(`b1/${JOURNAL_PREFIX}000000000000002_bbbbbbbb_000000.ignore`, segment([
        JSON.stringify({ prefix: '', file: file('b') }),
        JSON.stringify({ prefix: '', file: { ...file('c'), sha256: 'not hex' } }),
        JSON.stringify({ prefix: 'partitions/20261121/', file: { ...file('d'), size: -1 } }),
        'null',
      ]));
      const journal = await readJournal(store, 'b1');
      expect([...journal.keys()]).to.deep.equal(['']);
      expect(journal.get('')!.get('data/x')!.sha256).to.equal('b'.repeat(64));
      expect(journal.get('')!.size).to.equal(1);
    });
  });

  it('backups whose names share a prefix (b1 and b10) are separate folders: a re-run into b1 that removes a stale object, and deleting b1, leave every object of b10', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    const first = await backupOf(store, snapshot, 'b1');
    await backupOf(store, snapshot, 'b10');
    const objectsOf = (name: string) => new Map([...store.objects].filter(([key]) => key.startsWith(`${name}/`)));
    const b10 = objectsOf('b10');
    expect(b10.size, 'b10 holds its parts and markers').to.be.greaterThan(5);
    expect(b10.has(`b10/${COMPLETE_KEY}`)).to.equal(true);

    // A re-run into b1 (as vmbackup into an existing -dst) finds a stale object of an earlier attempt there, and removes it only.
    const stale = 'b1/data/stale-file/0000000000000001_0000000000000000_0000000000000001';
    store.objects.set(stale, Buffer.from('x'));
    await backupOf(store, snapshot, 'b1', { base: { name: 'b1', manifest: first } });
    expect(store.objects.has(stale), 'the stale object in b1/ is removed').to.equal(false);
    expect((await verifyBackup(store, 'b1')).problems).to.deep.equal([]);
    expect(objectsOf('b10'), 'every object of b10 as it was').to.deep.equal(b10);
    expect((await verifyBackup(store, 'b10')).ok).to.equal(true);

    // Deleting b1 removes b1's objects, and counts only those.
    const b1Count = objectsOf('b1').size;
    const removed = await deleteBackup(store, 'b1');
    expect(removed.objects).to.equal(b1Count);
    expect(objectsOf('b1').size, 'b1 is gone').to.equal(0);
    expect(objectsOf('b10'), 'every object of b10 as it was').to.deep.equal(b10);
    expect((await verifyBackup(store, 'b10')).ok).to.equal(true);
    expect((await listBackups(store)).map((b) => [b.name, b.complete])).to.deep.equal([['b10', true]]);
  });

  describe('two backups of one name at once', () => {
    /** Resolves when `release` is called: a count (or a file read) that takes as long as the test wants. */
    const gate = <T>() => {
      let release!: (v: T) => void;
      const wait = new Promise<T>((r) => (release = r));
      return { wait, release };
    };
    const until = async (ok: () => boolean) => {
      for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
      expect(ok(), 'reached in time').to.equal(true);
    };

    it('a run whose folder another run took over while it counted stops before its manifest, removing nothing; the other is complete and verifies', async () => {
      const { snapshot } = makeSnapshot();
      const store = new MemoryStore();
      const counts = gate<BackupCounts>();
      let checking = false;
      // B uploads and checks its objects, then waits for its counts ...
      const b = backupOf(store, snapshot, 'X', { counted: pendingCounts(counts.wait), onFailure: 'keep-journaled', onProgress: (p) => (checking ||= p.phase === 'checking') }).catch((e: unknown) => e);
      await until(() => checking);
      await new Promise((r) => setTimeout(r, 20));
      // ... while A, of the same name, runs start to end.
      await backupOf(store, snapshot, 'X');
      counts.release({ counts: { series: 1, samples: 2 } });
      const err = (await b) as Error;
      expect(err.message).to.match(/^memory:\/\/test\/X\/: its in-progress marker victoria_in_progress\.ignore is gone .*Two backups of one name ran at the same time, so this one stopped: nothing of it was marked complete, and nothing the other wrote was removed/);
      expect(err.message, "onFailure 'keep-journaled' removed nothing").not.to.match(/were removed/);
      expect((await verifyBackup(store, 'X')).ok).to.equal(true);
    });

    it('a run that finds the folder taken over when it is about to delete stale objects deletes none of them; the run that took it completes', async () => {
      const { snapshot } = makeSnapshot();
      const store = new MemoryStore();
      // A backs up one file less than B, so that B's copy of that file is a stale object to A.
      const files = (await listSnapshotFiles(snapshot)).filter((f) => !f.path.endsWith('index.bin'));
      const readA = gate<void>();
      const local = localFileReader(snapshot);
      // A starts first, and its file reads wait ...
      const held: FileReader = {
        async *read(want) {
          await readA.wait;
          yield* local.read(want);
        },
      };
      const a = writeBackup({
        store, name: 'X', kind: 'metrics', trees: [{ prefix: '', restoreTo: '', files, reader: held }], source: { snapshots: ['S1'] },
        counted: { counts: { series: 1, samples: 2 } }, createdAt: new Date(), onFailure: 'keep-journaled',
      }).catch((e: unknown) => e);
      await until(() => store.objects.has(`X/${IN_PROGRESS_KEY}`));
      // ... while B starts (its marker over A's) and waits for its counts with everything uploaded.
      const counts = gate<BackupCounts>();
      let checking = false;
      const b = backupOf(store, snapshot, 'X', { counted: pendingCounts(counts.wait), onProgress: (p) => (checking ||= p.phase === 'checking') });
      await until(() => checking);
      const bObjects = [...store.objects.keys()].filter((k) => k.startsWith('X/data/'));
      expect(bObjects.some((k) => k.includes('index.bin'))).to.equal(true);
      readA.release();
      const err = (await a) as Error;
      expect(err.message).to.match(/another backup of this name, started at .*, wrote its in-progress marker over this one's/);
      for (const key of bObjects) expect(store.objects.has(key), `${key} kept`).to.equal(true);
      counts.release({ counts: { series: 1, samples: 2 } });
      await b;
      expect((await verifyBackup(store, 'X')).ok).to.equal(true);
    });

    it('stale complete markers are deleted before the rest of the stale objects, so a deletion that fails halfway leaves no marker over a partial tree', async () => {
      const { snapshot } = makeSnapshot();
      class RecordingStore extends MemoryStore {
        readonly deletes: string[][] = [];
        override async delete(keys: string[]): Promise<void> {
          this.deletes.push([...keys]);
          await super.delete(keys);
        }
      }
      const store = new RecordingStore();
      // An earlier complete run of X held a second tree (a VictoriaLogs-like partition) that this run no longer has.
      await backupOf(store, snapshot, 'X');
      store.objects.set('X/partitions/20260101/backup_complete.ignore', Buffer.alloc(0));
      store.objects.set('X/partitions/20260101/datadb/p/values.bin/0000000000000001_0000000000000000_0000000000000001', Buffer.from('x'));
      store.deletes.length = 0;
      await backupOf(store, snapshot, 'X');
      const stale = store.deletes.filter((d) => d.some((k) => k.startsWith('X/partitions/')));
      expect(stale).to.deep.equal([['X/partitions/20260101/backup_complete.ignore'], ['X/partitions/20260101/datadb/p/values.bin/0000000000000001_0000000000000000_0000000000000001']]);
    });
  });

  it('a file that changes size while read fails the backup', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    const files = await listSnapshotFiles(snapshot);
    files.find((f) => f.path.endsWith('index.bin'))!.size += 10;
    let err: Error | undefined;
    await writeBackup({
      store, name: 'b1', kind: 'metrics', trees: [{ prefix: '', restoreTo: '', files, reader: localFileReader(snapshot) }],
      source: { snapshots: [] }, counted: { counts: {} }, createdAt: new Date(),
    }).catch((e: Error) => (err = e));
    expect(err?.message).to.match(/index.bin is shorter than the 15 bytes listed/);
    expect(store.objects.has(`b1/${COMPLETE_KEY}`)).to.equal(false);
  });

  it('incremental: unchanged immutable files are copied, changed and mutable ones uploaded', async () => {
    const { snapshot, dataDir } = makeSnapshot();
    const real = join(dataDir, 'data', 'small', 'snapshots', 'S1', '2026_11');
    // Files the database rewrites in place: retention's record and a part's deleted-rows marker.
    writeFileSync(join(real, 'appliedRetention.txt'), '2026-11-01T00:00:00Z');
    writeFileSync(join(real, 'PART1', 'deleted_rows.bin'), Buffer.alloc(16, 0));
    const store = new MemoryStore();
    await backupOf(store, snapshot, 'b1');
    const base = await newestComplete(store);
    // A new part appears; parts.json is rewritten with the same size; the two in-place files get
    // new content of the same size and keep their mtimes: only their names say they changed.
    mkdirSync(join(real, 'PART2'));
    writeFileSync(join(real, 'PART2', 'values.bin'), Buffer.alloc(1000, 1));
    writeFileSync(join(real, 'parts.json'), '{"Small":["PART2"]}');
    for (const [file, content] of [
      ['appliedRetention.txt', '2026-11-20T00:00:00Z'],
      ['PART1/deleted_rows.bin', Buffer.alloc(16, 7)],
    ] as const) {
      const { atime, mtime } = statSync(join(real, file));
      writeFileSync(join(real, file), content);
      utimesSync(join(real, file), atime, mtime);
    }
    const m2 = await backupOf(store, snapshot, 'b2', { base });
    const origin = Object.fromEntries(m2.trees[0]!.files.map((f) => [f.path, f.origin]));
    expect(origin).to.deep.equal({
      'data/small/2026_11/PART1/deleted_rows.bin': 'uploaded',
      'data/small/2026_11/PART1/empty.bin': 'copied',
      'data/small/2026_11/PART1/index.bin': 'copied',
      'data/small/2026_11/PART1/values.bin': 'copied',
      'data/small/2026_11/PART2/values.bin': 'uploaded',
      'data/small/2026_11/appliedRetention.txt': 'uploaded',
      'data/small/2026_11/parts.json': 'uploaded',
      'metadata/minTimestampForCompositeIndex': 'uploaded',
    });
    expect(m2.basedOn).to.equal('b1');
    expect(m2.totals.bytesUploaded).to.equal(16 + 1000 + 20 + 19 + 8);
    const target = join(tmp('r-'), 'd');
    await restoreBackup({ store, name: 'b2', dataDir: target });
    expect(readFileSync(join(target, 'data/small/2026_11/parts.json'), 'utf8')).to.equal('{"Small":["PART2"]}');
    expect(readFileSync(join(target, 'data/small/2026_11/appliedRetention.txt'), 'utf8')).to.equal('2026-11-20T00:00:00Z');
    expect(readFileSync(join(target, 'data/small/2026_11/PART1/deleted_rows.bin')).equals(Buffer.alloc(16, 7))).to.equal(true);
  });

  it('incremental of many partitions: the base is listed one tree at a time (not a partition it lacks), and a manifest of many files is written a line per file in several chunks', async () => {
    // 3000 files in each of three partitions: a manifest over 1 MiB, so more than one chunk.
    const files = (gen: number): SnapshotFile[] =>
      Array.from({ length: 3000 }, (_, i) => ({ path: `datadb/17A${String(Math.floor(i / 20)).padStart(13, '0')}/values.bin${i % 20}`, size: 1, mtimeMs: 1_700_000_000_000 + gen }));
    const reader: FileReader = {
      async *read(wanted) {
        for (const file of wanted) yield { file, stream: Readable.from([Buffer.from('x')]) };
      },
    };
    const trees = (days: string[], changed: string) => days.map((day) => ({ prefix: `partitions/${day}/`, restoreTo: `partitions/${day}`, files: files(day === changed ? 1 : 0), reader }));
    const store = new MemoryStore();
    const logs = { kind: 'logs' as const, source: { snapshots: [] }, counted: { counts: {} }, createdAt: new Date('2026-11-21T17:45:06Z') };
    await writeBackup({ ...logs, store, name: 'l1', trees: trees(['20261119', '20261120'], '') });
    const listed: string[] = [];
    const list = store.list.bind(store);
    store.list = (prefix: string) => {
      listed.push(prefix);
      return list(prefix);
    };
    const base = await newestComplete(store);
    const m2 = await writeBackup({ ...logs, store, name: 'l2', trees: trees(['20261120', '20261121'], ''), base });
    expect(listed.filter((prefix) => prefix.startsWith('l1/'))).to.deep.equal(['l1/partitions/20261120/']);
    expect(m2.trees.map((t) => t.files.every((f) => f.origin === 'copied'))).to.deep.equal([true, false]);
    expect(m2.totals).to.include({ files: 6000, bytesCopied: 3000, bytesUploaded: 3000 });
    const text = store.objects.get(`l2/${MANIFEST_KEY}`)!.toString();
    expect(text.length).to.be.above(1024 * 1024);
    expect(JSON.parse(text)).to.deep.equal(m2);
    expect(text.split('\n').filter((line) => line.startsWith('{"path":'))).to.have.length(6000);
    expect((await openBackup(store, 'l2')).totals.files).to.equal(6000);
    expect((await verifyBackup(store, 'l2')).ok).to.equal(true);
  });

  it('the files rewritten in place are named by their paths in both layouts; part files are not', () => {
    for (const path of [
      'data/small/2026_11/parts.json',
      'data/small/2026_11/appliedRetention.txt',
      'indexdb/18EA2078/parts.json',
      'datadb/parts.json',
      'datadb/18EA20786F6590EC/deleted_rows.bin',
      'data/small/2026_11/3_3_20261121174406.610_20261121174506.610_18EA207CAD30F333/min_dedup_interval',
      'metadata/minTimestampForCompositeIndex',
      'flock.lock',
    ]) {
      expect(isMutableFile(path), path).to.equal(true);
    }
    for (const path of [
      'data/small/2026_11/18EA207871200FD4/values.bin',
      'data/small/2026_11/18EA207871200FD4/metadata.json',
      'indexdb/18EA2078/18EA207C354FB8B7/items.bin',
      'datadb/18EA20786F6590EC/column_names.bin',
    ]) {
      expect(isMutableFile(path), path).to.equal(false);
    }
  });

  it('incremental: a server-side copy the store refuses becomes an upload, and the backup completes', async () => {
    // As a server may (moto refuses CopyObject into a bucket with S3 Object Lock without a checksum header).
    class NoCopies extends MemoryStore {
      override async copy(): Promise<void> {
        throw new StoreError('Failed', 'copy refused', { operation: 'copy', status: 400 });
      }
    }
    const { snapshot } = makeSnapshot();
    const store = new NoCopies();
    await backupOf(store, snapshot, 'b1');
    const m2 = await backupOf(store, snapshot, 'b2', { base: await newestComplete(store) });
    expect(m2.trees[0]!.files.every((f) => f.origin === 'uploaded')).to.equal(true);
    expect(m2.totals.bytesCopied).to.equal(0);
    expect(m2.totals.bytesUploaded).to.equal(m2.totals.bytes);
    // Immutable files were to be copied: the manifest counts the refusals, with the first message.
    const meant = m2.trees[0]!.files.filter((f) => !f.path.endsWith('parts.json') && !f.path.startsWith('metadata/')).length;
    expect(m2.copiesRefused).to.deep.equal({ count: meant, first: 'copy refused' });
    expect(copiesRefusedText(m2.copiesRefused!)).to.equal(`${meant} unchanged files were uploaded instead of copied server-side from the base backup (the backup is complete; the first one's reason: copy refused)`);
    expect((await backupOf(new MemoryStore(), snapshot, 'b1')).copiesRefused, 'absent when nothing was refused').to.equal(undefined);
    expect(store.objects.has(`b2/${COMPLETE_KEY}`)).to.equal(true);
    expect((await verifyBackup(store, 'b2')).ok).to.equal(true);
  });

  it('incremental: a store that refuses us (credentials) fails the backup at the first copy; one that fails past its retries, after a run of copies with none working', async () => {
    // A snapshot of many part directories: more unchanged files than copies run at once.
    const { snapshot } = makeSnapshot();
    const real = join(snapshot, 'data', 'small', '2026_11');
    for (let i = 0; i < 40; i++) {
      mkdirSync(join(real, `PART-${i}`));
      writeFileSync(join(real, `PART-${i}`, 'values.bin'), `part ${i}`);
    }
    const failing = (failure: StoreError, worksEvery = 0) =>
      new (class extends MemoryStore {
        override async copy(from: string, to: string): Promise<void> {
          this.calls.copy++;
          if (worksEvery > 0 && this.calls.copy % worksEvery === 0) return super.copy(from, to);
          throw failure;
        }
      })();
    for (const [failure, most] of [
      [new StoreError('Credentials', 'copy s3://b/k: the session token has expired (ExpiredToken)', { operation: 'copy' }), 16],
      [new StoreError('Failed', 'copy s3://b/k: cannot reach http://s3:9000 (ECONNREFUSED)', { operation: 'copy' }), 16 + 15],
      [new StoreError('Failed', 'copy s3://b/k: failed after 10 attempts: InternalError (HTTP 500)', { operation: 'copy', status: 500 }), 16 + 15],
    ] as const) {
      const store = failing(failure);
      await backupOf(store, snapshot, 'b1');
      const puts = store.calls.put;
      const err = (await backupOf(store, snapshot, 'b2', { base: await newestComplete(store) }).catch((e: Error) => e)) as Error;
      expect(err.message).to.equal(failure.message);
      expect(store.calls.copy, 'not one copy per file').to.be.at.most(most);
      expect(store.calls.put - puts, 'no file uploaded instead').to.be.at.most(1);
      expect(store.objects.has(`b2/${COMPLETE_KEY}`)).to.equal(false);
    }
    // Copies that fail now and then (a long copy timing out, copy-rate throttling) are uploaded instead.
    const flaky = failing(new StoreError('Failed', 'copy s3://b/k: failed after 10 attempts: SlowDown (HTTP 503)', { operation: 'copy', status: 503 }), 3);
    await backupOf(flaky, snapshot, 'b1');
    const m2 = await backupOf(flaky, snapshot, 'b2', { base: await newestComplete(flaky) });
    expect(m2.copiesRefused!.count).to.be.greaterThan(20);
    expect((await verifyBackup(flaky, 'b2')).ok).to.equal(true);
    // A server without server-side copies (501) is a refusal: every file is uploaded.
    const noCopies = failing(new StoreError('Failed', 'copy s3://b/k: failed: NotImplemented (HTTP 501)', { operation: 'copy', status: 501 }));
    await backupOf(noCopies, snapshot, 'b1');
    const m3 = await backupOf(noCopies, snapshot, 'b2', { base: await newestComplete(noCopies) });
    expect(m3.totals.bytesCopied).to.equal(0);
    expect((await verifyBackup(noCopies, 'b2')).ok).to.equal(true);
  });

  it('an aborted signal (the Velero item timeout) stops the backup before its next copy or upload, with the signal\'s reason', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    await backupOf(store, snapshot, 'b1');
    const controller = new AbortController();
    controller.abort(new Error('the backup took longer than itemTimeoutSeconds (1 s) and was stopped'));
    const before = { ...store.calls };
    for (const base of [await newestComplete(store), undefined]) {
      const err = (await backupOf(store, snapshot, 'b2', { ...(base ? { base } : {}), signal: controller.signal }).catch((e: Error) => e)) as Error;
      expect(err.message).to.equal('the backup took longer than itemTimeoutSeconds (1 s) and was stopped');
    }
    expect(store.calls.copy).to.equal(before.copy);
    expect([...store.objects.keys()].filter((k) => k.startsWith('b2/data/')), 'nothing copied or uploaded').to.deep.equal([]);
    expect(store.objects.has(`b2/${COMPLETE_KEY}`)).to.equal(false);
  });

  it('the signal also ends the store calls in flight (a hung store), and the removal after it runs under its own deadline', async () => {
    const { snapshot } = makeSnapshot();
    // A store whose uploads of files (all but our .ignore markers) hang until the signal of the view
    // they were made through aborts, so no file is finished; its views share the objects.
    class HangingStore extends MemoryStore {
      signal?: AbortSignal;
      views: HangingStore[] = [];
      withSignal(signal: AbortSignal): ObjectStore {
        const view = Object.create(this) as HangingStore;
        view.signal = signal;
        this.views.push(view);
        return view;
      }
      override async put(key: string, body: PutBody, size: number): Promise<void> {
        if (key.endsWith('.ignore')) return super.put(key, body, size);
        const signal = this.signal!;
        // The deadline passes while the upload is under way.
        setTimeout(() => controller.abort(new Error('the backup took longer than itemTimeoutSeconds (1 s) and was stopped')), 10);
        await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }));
      }
    }
    const controller = new AbortController();
    const store = new HangingStore();
    const started = Date.now();
    const err = (await backupOf(store, snapshot, 'b1', { signal: controller.signal, onFailure: 'keep-journaled' }).catch((e: Error) => e)) as Error;
    expect(Date.now() - started, 'ended by the signal, not by a timeout').to.be.below(5000);
    expect(err.message).to.match(/^the backup took longer than itemTimeoutSeconds \(1 s\) and was stopped; the \d+ object\(s\) this attempt wrote to memory:\/\/test\/b1\/ were removed$/);
    // The backup's calls went through a view on the item's signal; the removal through one of its own, not aborted.
    expect(store.views.map((v) => v.signal === controller.signal)).to.deep.equal([true, false]);
    expect(store.views[1]!.signal!.aborted).to.equal(false);
    expect([...store.objects.keys()]).to.deep.equal([]);
  });

  it('a stop after the last file (Ctrl-C while the objects are checked) still leaves the backup incomplete', async () => {
    const { snapshot } = makeSnapshot();
    for (const phase of ['checking', 'uploading'] as const) {
      const store = new MemoryStore();
      const controller = new AbortController();
      const onProgress = (p: { phase: string }) => p.phase === phase && controller.abort(new Error('stopped by SIGINT'));
      const err = (await backupOf(store, snapshot, 'b1', { signal: controller.signal, onProgress }).catch((e: Error) => e)) as Error;
      expect(err.message, phase).to.equal('stopped by SIGINT');
      expect(store.objects.has(`b1/${COMPLETE_KEY}`), phase).to.equal(false);
      expect(store.objects.has('b1/backup_complete.ignore'), phase).to.equal(false);
    }
  });

  it('incremental: an object of the base that is missing or of the wrong size is uploaded instead of copied, naming it; the backup completes', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    await backupOf(store, snapshot, 'b1');
    const truncated = [...store.objects.keys()].find((k) => k.includes('PART1/values.bin/'))!;
    const gone = [...store.objects.keys()].find((k) => k.includes('PART1/index.bin/'))!;
    store.objects.set(truncated, store.objects.get(truncated)!.subarray(1));
    store.objects.delete(gone);
    const m2 = await backupOf(store, snapshot, 'b2', { base: await newestComplete(store) });
    const origin = Object.fromEntries(m2.trees[0]!.files.map((f) => [f.path, f.origin]));
    expect(origin['data/small/2026_11/PART1/values.bin']).to.equal('uploaded');
    expect(origin['data/small/2026_11/PART1/index.bin']).to.equal('uploaded');
    expect(origin['data/small/2026_11/PART1/empty.bin']).to.equal('copied');
    expect(m2.copiesRefused!.count).to.equal(2);
    expect(m2.copiesRefused!.first).to.match(/^memory:\/\/test\/b1\/data\/small\/2026_11\/PART1\/(values|index)\.bin\/\S+ (has \d+ bytes, its manifest says \d+|is missing): the base backup is damaged \(find every bad file with verify\)/);
    expect((await verifyBackup(store, 'b2')).ok).to.equal(true);
    // A re-run into the same name (in place, nothing copied) mends a damaged object of its own too.
    store.objects.set(truncated.replace('b1/', 'b2/'), Buffer.alloc(0));
    const again = await backupOf(store, snapshot, 'b2', { base: await newestComplete(store) });
    expect(again.copiesRefused!.count).to.equal(1);
    expect((await verifyBackup(store, 'b2')).ok).to.equal(true);
  });

  it('incremental: an object of the base replaced at the same size is uploaded, not copied on (its ETag is recorded), also when replaced between the listing and the copy', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    const m1 = await backupOf(store, snapshot, 'b1');
    const values = m1.trees[0]!.files.find((f) => f.path === 'data/small/2026_11/PART1/values.bin')!;
    const key = [...store.objects.keys()].find((k) => k.includes('b1/data/small/2026_11/PART1/values.bin/'))!;
    expect(values.etags, 'one per part, as listed').to.deep.equal([createHash('md5').update(store.objects.get(key)!).digest('hex')]);
    const replaced = Buffer.from(store.objects.get(key)!).fill(0x42);
    store.objects.set(key, replaced);
    const m2 = await backupOf(store, snapshot, 'b2', { base: await newestComplete(store) });
    const origin = Object.fromEntries(m2.trees[0]!.files.map((f) => [f.path, f.origin]));
    expect(origin['data/small/2026_11/PART1/values.bin']).to.equal('uploaded');
    expect(origin['data/small/2026_11/PART1/index.bin']).to.equal('copied');
    expect(m2.copiesRefused).to.deep.equal({ count: 1, first: m2.copiesRefused!.first });
    expect(m2.copiesRefused!.first).to.match(/^memory:\/\/test\/b1\/data\/small\/2026_11\/PART1\/values\.bin\/\S+ was replaced since the base backup was written \(its ETag is [0-9a-f]{32}, the base's manifest says [0-9a-f]{32}\): the base backup is damaged/);
    expect((await verifyBackup(store, 'b2')).ok).to.equal(true);

    // Replaced after the base was listed: the copy pinned to the recorded ETag is refused, and the file uploaded.
    const racing = new (class extends MemoryStore {
      override async copy(from: string, to: string, size?: number, ifMatch?: string): Promise<void> {
        if (from.includes('PART1/index.bin/')) this.objects.set(from, Buffer.from(this.objects.get(from)!).fill(0x43));
        return super.copy(from, to, size, ifMatch);
      }
    })();
    await backupOf(racing, snapshot, 'b1');
    const m3 = await backupOf(racing, snapshot, 'b2', { base: await newestComplete(racing) });
    expect(m3.trees[0]!.files.find((f) => f.path === 'data/small/2026_11/PART1/index.bin')!.origin).to.equal('uploaded');
    expect(m3.copiesRefused!.first).to.match(/PART1\/index\.bin\/\S+: the object was replaced/);
    expect((await verifyBackup(racing, 'b2')).ok).to.equal(true);
  });

  it('incremental: a base manifest without ETags (an older version\'s, or file://) still copies, checking sizes', async () => {
    const { snapshot } = makeSnapshot();
    const store = new (class extends MemoryStore {
      override async *list(prefix: string) {
        for await (const { etag: _etag, ...o } of super.list(prefix)) yield o;
      }
    })();
    const m1 = await backupOf(store, snapshot, 'b1');
    expect(m1.trees[0]!.files.every((f) => f.etags === undefined)).to.equal(true);
    const m2 = await backupOf(store, snapshot, 'b2', { base: await newestComplete(store) });
    expect(m2.copiesRefused).to.equal(undefined);
    expect(m2.totals.bytesUploaded).to.be.below(m2.totals.bytes);
  });

  it('verify names a tampered object, and restore refuses it by checksum', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    await backupOf(store, snapshot, 'b1');
    const key = [...store.objects.keys()].find((k) => k.includes('PART1/index.bin/'))!;
    store.objects.set(key, Buffer.from('INDEX'));
    const result = await verifyBackup(store, 'b1');
    expect(result.ok).to.equal(false);
    expect(result.problems).to.deep.equal([{ path: 'data/small/2026_11/PART1/index.bin', problem: result.problems[0]!.problem }]);
    expect(result.problems[0]!.problem).to.match(/SHA-256 .* does not match/);
    const target = join(tmp('r-'), 'd');
    let err: Error | undefined;
    await restoreBackup({ store, name: 'b1', dataDir: target }).catch((e: Error) => (err = e));
    expect(err?.message).to.match(/checksum mismatch for data\/small\/2026_11\/PART1\/index.bin/);
    expect(existsSync(join(target, RESTORE_MARKER)), 'the marker keeps the database from starting on bad data').to.equal(true);
  });

  it('a damaged file ends the downloads and uploads in flight at their next chunk instead of their end', async () => {
    const { snapshot } = makeSnapshot();
    const dir = tmp('store-');
    // values.bin (300 000 bytes) takes more than a second at this rate, index.bin (5 bytes) none:
    // the failure of index.bin comes while values.bin is under way.
    const rate = 256 * 1024;
    const isValues = (key: string) => key.includes('/values.bin/');
    let valuesRead = 0;
    const store = new (class extends FileStore {
      override async get(key: string, range?: Parameters<FileStore['get']>[1]) {
        const body = await super.get(key, range);
        if (!isValues(key)) return body;
        return Readable.from(
          (async function* () {
            for await (const c of body) {
              valuesRead += (c as Buffer).length;
              yield c as Buffer;
            }
          })(),
        );
      }
    })(dir);
    await backupOf(store, snapshot, 'b1');
    const index = readdirSync(join(dir, 'b1/data/small/2026_11/PART1/index.bin'))[0]!;
    writeFileSync(join(dir, 'b1/data/small/2026_11/PART1/index.bin', index), 'INDEX');
    valuesRead = 0;
    const err = (await restoreBackup({ store, name: 'b1', dataDir: join(tmp('r-'), 'd'), maxBytesPerSecond: rate }).catch((e: Error) => e)) as Error;
    expect(err.message).to.match(/checksum mismatch for data\/small\/2026_11\/PART1\/index.bin/);
    expect(valuesRead, 'values.bin was not read to its end').to.be.above(0).and.below(300_000);

    // A backup whose small upload fails does not read the large file to its end either.
    let valuesSent = 0;
    const failing = new (class extends MemoryStore {
      override async put(key: string, body: Parameters<MemoryStore['put']>[1], size: number): Promise<void> {
        if (key.includes('/index.bin/')) throw new Error(`injected failure writing ${key}`);
        if (!isValues(key) || Buffer.isBuffer(body)) return super.put(key, body, size);
        for await (const c of body) valuesSent += (c as Buffer).length;
        throw new Error('unreachable: the body ends with the failure of index.bin');
      }
    })();
    const failed = (await backupOf(failing, snapshot, 'b2', { maxBytesPerSecond: rate }).catch((e: Error) => e)) as Error;
    expect(failed.message).to.match(/injected failure writing b2\/data\/small\/2026_11\/PART1\/index.bin/);
    expect(valuesSent, 'values.bin was not read to its end').to.be.below(300_000);
    expect(failing.objects.has(`b2/${COMPLETE_KEY}`)).to.equal(false);
  });

  it('a checksum mismatch in a VictoriaLogs partition names the file with its partition; the failed restore leaves nothing in partitions/ (VictoriaLogs ignores the marker), and its resume puts the partitions in place', async () => {
    const { snapshot } = makeSnapshot();
    const files = await listSnapshotFiles(snapshot);
    const store = new MemoryStore();
    const tree = (day: string) => ({ prefix: `partitions/${day}/`, restoreTo: `partitions/${day}`, files, reader: localFileReader(snapshot) });
    await backupOf(store, snapshot, 'l1', { kind: 'logs', trees: [tree('20261119'), tree('20261120')] });
    const key = [...store.objects.keys()].find((k) => k.startsWith('l1/partitions/20261120/') && k.includes('PART1/index.bin/'))!;
    const good = store.objects.get(key)!;
    store.objects.set(key, Buffer.from('INDEX'));
    const target = join(tmp('r-'), 'd');
    const err = (await restoreBackup({ store, name: 'l1', dataDir: target, resumeToken: 'plan p1' }).catch((e: Error) => e)) as Error;
    expect(err.message).to.match(/^checksum mismatch for partitions\/20261120\/data\/small\/2026_11\/PART1\/index.bin: /);
    expect(readdirSync(target).sort()).to.deep.equal([RESTORE_STAGING, RESTORE_MARKER].sort());
    // Put back, the same restore resumes: whole files stay, and the partitions are renamed into place.
    store.objects.set(key, good);
    const res = await restoreBackup({ store, name: 'l1', dataDir: target, resumeToken: 'plan p1' });
    expect(res.resumedFiles).to.be.greaterThan(0);
    expect(readdirSync(target)).to.deep.equal(['partitions']);
    expect(readdirSync(join(target, 'partitions')).sort()).to.deep.equal(['20261119', '20261120']);
    expect(readFileSync(join(target, 'partitions/20261120/data/small/2026_11/PART1/index.bin'), 'utf8')).to.equal('index');
    // Cut off between the renames: the one in place is taken as it is, the other is still staged.
    const again = join(tmp('r-'), 'd');
    await restoreBackup({ store, name: 'l1', dataDir: again, resumeToken: 'plan p2' });
    mkdirSync(join(again, RESTORE_STAGING, 'partitions'), { recursive: true });
    renameSync(join(again, 'partitions/20261120'), join(again, RESTORE_STAGING, 'partitions/20261120'));
    writeFileSync(join(again, RESTORE_MARKER), 'plan p2');
    const resumed = await restoreBackup({ store, name: 'l1', dataDir: again, resumeToken: 'plan p2' });
    expect(resumed.resumedFiles).to.equal(2 * files.length);
    expect(readdirSync(again)).to.deep.equal(['partitions']);
    // Cut off after both renames: the empty staging folder goes too.
    mkdirSync(join(again, RESTORE_STAGING, 'partitions'), { recursive: true });
    writeFileSync(join(again, RESTORE_MARKER), 'plan p2');
    await restoreBackup({ store, name: 'l1', dataDir: again, resumeToken: 'plan p2' });
    expect(readdirSync(again)).to.deep.equal(['partitions']);
    expect(readdirSync(join(again, 'partitions')).sort()).to.deep.equal(['20261119', '20261120']);
  });

  it('a manifest edited after completion is refused', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    await backupOf(store, snapshot, 'b1');
    const manifest = JSON.parse(store.objects.get(`b1/${MANIFEST_KEY}`)!.toString());
    manifest.trees[0].files[0].path = '../../etc/cron.d/evil';
    store.objects.set(`b1/${MANIFEST_KEY}`, Buffer.from(JSON.stringify(manifest)));
    let err: Error | undefined;
    await restoreBackup({ store, name: 'b1', dataDir: join(tmp('r-'), 'd') }).catch((e: Error) => (err = e));
    expect(err?.message).to.match(/does not match its complete marker/);
  });

  it('a tree\'s restore location is checked like every path, also for a tree without files: restore, plan and verify refuse it, a backup never writes it', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    await backupOf(store, snapshot, 'b1');
    // Someone who can write the bucket adds a tree and pins the manifest in the complete marker again.
    const repin = (edit: (trees: Array<{ prefix: string; restoreTo: string; files: unknown[] }>) => void) => {
      const manifest = JSON.parse(store.objects.get(`b1/${MANIFEST_KEY}`)!.toString());
      edit(manifest.trees);
      const bytes = Buffer.from(JSON.stringify(manifest));
      store.objects.set(`b1/${MANIFEST_KEY}`, bytes);
      const marker = JSON.parse(store.objects.get(`b1/${COMPLETE_KEY}`)!.toString());
      store.objects.set(`b1/${COMPLETE_KEY}`, Buffer.from(JSON.stringify({ ...marker, manifestSha256: createHash('sha256').update(bytes).digest('hex') })));
    };
    repin((trees) => trees.push({ prefix: 'partitions/20240102/', restoreTo: '../evil', files: [] }));
    const parent = tmp('r-');
    const err = (await restoreBackup({ store, name: 'b1', dataDir: join(parent, 'd') }).catch((e: Error) => e)) as Error;
    expect(err.message).to.equal('unsafe restore location "../evil": it must be relative, with no "..", "." or empty segments');
    expect(readdirSync(parent), 'nothing written, inside or beside the data directory').to.deep.equal([]);
    const verified = await verifyBackup(store, 'b1');
    expect(verified.ok).to.equal(false);
    expect(verified.problems).to.deep.equal([{ path: MANIFEST_KEY, problem: `a restore refuses this manifest: ${err.message}` }]);
    const plan = (await buildRestorePlan({ store, backupName: 'b1', restore: 'r1', expiresInSeconds: 60, presign: async (k) => k }).catch((e: Error) => e)) as Error;
    expect(plan.message).to.match(/b1: its manifest cannot be restored: unsafe restore location "\.\.\/evil"/);

    const restoring = async () => ((await restoreBackup({ store, name: 'b1', dataDir: join(parent, 'd') }).catch((e: Error) => e)) as Error).message;
    repin((trees) => (trees[1]!.restoreTo = 'data'));
    expect(await restoring()).to.equal('a tree restores to the data directory itself, beside 1 other tree(s): it must be the only one');
    repin((trees) => {
      trees[0]!.restoreTo = 'partitions/a';
      trees[1]!.restoreTo = 'partitions/a/b';
    });
    expect(await restoring()).to.equal('two trees restore to "partitions/a" and "partitions/a/b", one inside the other');
    expect(readdirSync(parent)).to.deep.equal([]);

    const files = await listSnapshotFiles(snapshot);
    for (const [restoreTo, message] of [
      ['../x', 'unsafe restore location "../x": it must be relative, with no "..", "." or empty segments'],
      ['/abs', 'unsafe restore location "/abs": it must be relative, with no "..", "." or empty segments'],
    ] as const) {
      const refused = (await writeBackup({
        store, name: 'b9', kind: 'logs', source: { snapshots: [] }, counted: { counts: {} }, createdAt: new Date(),
        trees: [{ prefix: 'partitions/20240101/', restoreTo, files, reader: localFileReader(snapshot) }],
      }).catch((e: Error) => e)) as Error;
      expect(refused.message).to.equal(message);
    }
    expect([...store.objects.keys()].some((k) => k.startsWith('b9/')), 'nothing written for a refused tree').to.equal(false);
  });

  it('a VictoriaLogs partition without files is restored as an empty folder', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    await writeBackup({
      store, name: 'b1', kind: 'logs', source: { snapshots: [] }, counted: { counts: {} }, createdAt: new Date(),
      trees: [
        { prefix: 'partitions/20240101/', restoreTo: 'partitions/20240101', files: await listSnapshotFiles(snapshot), reader: localFileReader(snapshot) },
        { prefix: 'partitions/20240102/', restoreTo: 'partitions/20240102', files: [], reader: localFileReader(snapshot) },
      ],
    });
    const target = join(tmp('r-'), 'd');
    await restoreBackup({ store, name: 'b1', dataDir: target });
    expect(readdirSync(join(target, 'partitions')).sort()).to.deep.equal(['20240101', '20240102']);
    expect(readdirSync(join(target, 'partitions', '20240102'))).to.deep.equal([]);
    expect(existsSync(join(target, RESTORE_STAGING))).to.equal(false);
  });

  it('a backup in a manifest format of a later version is listed as unusable and passed over as a base, not a failure', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    await backupOf(store, snapshot, 'b1');
    await backupOf(store, snapshot, 'b2');
    // b2 as a later version would write it, with a complete marker that matches.
    const manifest = JSON.parse(store.objects.get(`b2/${MANIFEST_KEY}`)!.toString());
    const bytes = Buffer.from(JSON.stringify({ ...manifest, format: 'velero-plugin-victoria/manifest/v9' }));
    store.objects.set(`b2/${MANIFEST_KEY}`, bytes);
    const marker = JSON.parse(store.objects.get(`b2/${COMPLETE_KEY}`)!.toString());
    store.objects.set(`b2/${COMPLETE_KEY}`, Buffer.from(JSON.stringify({ ...marker, manifestSha256: createHash('sha256').update(bytes).digest('hex') })));
    const listed = await listBackups(store);
    expect(listed.map((b) => [b.name, b.complete])).to.deep.equal([['b1', true], ['b2', false]]);
    // A listing keeps totals, not the file lists of every backup (they would not fit for large ones).
    expect(listed[0]!.manifest).not.to.have.property('trees');
    expect(listed[0]!.manifest?.totals.files).to.equal(5);
    expect(listed[1]!.problem).to.match(/unknown manifest format "velero-plugin-victoria\/manifest\/v9" \(this tool reads .+\); use a version of velero-plugin-victoria that reads it, or another backup$/);
    expect((await newestComplete(store))?.name).to.equal('b1');
    const err = (await restoreBackup({ store, name: 'b2', dataDir: join(tmp('r-'), 'd') }).catch((e: Error) => e)) as Error;
    expect(err.message).to.match(/unknown manifest format/);
    // As a later version would really write it: the marker's format changes with the manifest's.
    store.objects.set(`b2/${COMPLETE_KEY}`, Buffer.from(JSON.stringify({ ...marker, format: 'velero-plugin-victoria/backup/v2', manifestSha256: createHash('sha256').update(bytes).digest('hex') })));
    const relisted = await listBackups(store);
    expect(relisted[1]!.problem).to.match(
      /unknown complete marker format "velero-plugin-victoria\/backup\/v2" \(this tool reads velero-plugin-victoria\/backup\/v1\): written by another version of velero-plugin-victoria; use a version that reads it, or another backup$/,
    );
    expect((await newestComplete(store))?.name).to.equal('b1');
  });

  it('a manifest of our format but not of our shape (another tool, or edited with its marker), or a marker too large to be one, is named by its field, passed over as a base (the next backup bases on the one before), and refused by restore and verify', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    await backupOf(store, snapshot, 'b1');
    await backupOf(store, snapshot, 'b2');
    const good = JSON.parse(store.objects.get(`b2/${MANIFEST_KEY}`)!.toString()) as Record<string, any>;
    const marker = JSON.parse(store.objects.get(`b2/${COMPLETE_KEY}`)!.toString());
    const cases: Array<[string, unknown, RegExp]> = [
      ['null', null, /unknown manifest format undefined/],
      ['a tree without files', { ...good, trees: [{ prefix: '', restoreTo: '' }] }, /: trees\[0\]\.files is not an array; it was written by another tool or changed with its marker; use another backup$/],
      ['no source', { ...good, source: undefined }, /: source is not an object;/],
      ['a bad SHA-256', { ...good, trees: [{ ...good.trees[0], files: [{ ...good.trees[0].files[0], sha256: 'x' }] }] }, /: trees\[0\]\.files\[0\]\.sha256 is not a SHA-256 in hex;/],
      ['a string count', { ...good, counts: { series: '1' } }, /: counts\.series is not a non-negative integer;/],
      ['not an object', [1], /: the manifest is not an object;|unknown manifest format/],
    ];
    for (const [what, manifest, expected] of cases) {
      const bytes = Buffer.from(JSON.stringify(manifest));
      store.objects.set(`b2/${MANIFEST_KEY}`, bytes);
      store.objects.set(`b2/${COMPLETE_KEY}`, Buffer.from(JSON.stringify({ ...marker, manifestSha256: createHash('sha256').update(bytes).digest('hex') })));
      const listed = await listBackups(store);
      expect(listed.map((b) => [b.name, b.complete]), what).to.deep.equal([['b1', true], ['b2', false]]);
      expect(listed[1]!.problem, what).to.match(/^memory:\/\/test\/b2: /).and.match(expected);
      expect((await newestComplete(store))?.name, what).to.equal('b1');
      const err = (await restoreBackup({ store, name: 'b2', dataDir: join(tmp('r-'), 'd') }).catch((e: Error) => e)) as Error;
      expect(err.message, what).to.match(expected);
      expect((await verifyBackup(store, 'b2').catch((e: Error) => ({ ok: false, problems: [e.message] }))).ok, what).to.equal(false);
    }
    // A marker of that name that is something else, and large: read no further than a marker can be.
    store.objects.set(`b2/${COMPLETE_KEY}`, Buffer.alloc(1024 * 1024, 32));
    const listed = await listBackups(store);
    expect(listed[1]!.problem).to.equal(`memory://test/b2/${COMPLETE_KEY} is larger than the 65536 bytes such an object can have: it is not what this tool wrote there; use another backup`);
    expect((await newestComplete(store))?.name).to.equal('b1');
  });

  it('a sequential reader (like the companion tar stream) works with several workers', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    const local = localFileReader(snapshot);
    // Hands out the next entry only after the previous stream ended, as a tar stream does.
    const sequential: FileReader = {
      async *read(files) {
        for await (const entry of local.read(files)) {
          let ended!: () => void;
          const done = new Promise<void>((r) => (ended = r));
          const inner = entry.stream;
          const stream = {
            async *[Symbol.asyncIterator]() {
              try {
                yield* inner;
              } finally {
                ended();
              }
            },
            destroy: (err?: Error) => inner.destroy(err),
          };
          yield { file: entry.file, stream };
          await done;
        }
      },
    };
    const files = await listSnapshotFiles(snapshot);
    const m = await writeBackup({
      store, name: 'seq', kind: 'metrics', trees: [{ prefix: '', restoreTo: '', files, reader: sequential }],
      source: { snapshots: [] }, counted: { counts: {} }, createdAt: new Date(), concurrency: 4,
    });
    expect(m.totals.files).to.equal(5);
    expect((await verifyBackup(store, 'seq')).ok).to.equal(true);
  });
});

describe('catalog: the newest complete backup', () => {
  const pause = () => new Promise((resolve) => setTimeout(resolve, 5));

  /** Backups completed in the order given (names sorted otherwise), each a real engine backup. */
  async function backupsInOrder(store: MemoryStore, snapshot: string, names: string[], kind: (name: string) => 'metrics' | 'logs' = () => 'metrics') {
    for (const name of names) {
      await backupOf(store, snapshot, name, { kind: kind(name) });
      await pause(); // completion times are in milliseconds
    }
  }

  it('orders by completion time from the complete markers, reading one manifest', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    // Velero backup names do not sort by time (schedule names, hand-made ones).
    const names = ['weekly-9', 'daily-3', 'zz-manual', 'a-latest'];
    await backupsInOrder(store, snapshot, names);
    store.calls.get = 0;
    const base = await newestComplete(store);
    expect(base?.name).to.equal('a-latest');
    expect(base?.manifest.name).to.equal('a-latest');
    expect(store.calls.get, 'one marker per backup and the chosen manifest').to.equal(names.length + 1);
  });

  it('skips backups without a usable marker or of another kind, and says why in the listing', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    await backupsInOrder(store, snapshot, ['b1', 'b2', 'b3', 'b4'], (name) => (name === 'b3' ? 'logs' : 'metrics'));
    store.objects.set(`b4/${COMPLETE_KEY}`, Buffer.from('{"format":')); // damaged after it completed
    store.objects.delete(`b2/${COMPLETE_KEY}`);
    const base = await newestComplete(store, '', { accept: (m) => m.kind === 'metrics' });
    expect(base?.name, 'b4 is damaged, b3 holds logs').to.equal('b1');
    expect((await newestComplete(store))?.name).to.equal('b3');
    const listing = await listBackups(store);
    expect(listing.map((b) => [b.name, b.complete])).to.deep.equal([['b1', true], ['b2', false], ['b3', true], ['b4', false]]);
    expect(listing[1]!.problem).to.match(/memory:\/\/test\/b2 is incomplete \(no victoria_complete\.ignore\)/);
    expect(listing[3]!.problem).to.match(/memory:\/\/test\/b4: its victoria_complete\.ignore is not JSON/);
    let err: Error | undefined;
    await openBackup(store, 'b4').catch((e: Error) => (err = e));
    expect(err?.message).to.match(/not JSON; the backup was changed after it completed/);
    // Folders that are not backups of ours say what they are.
    store.objects.set('vmb/backup_complete.ignore', Buffer.alloc(0));
    store.objects.set('roots/b1/victoria_complete.ignore', Buffer.from('{}'));
    const why = Object.fromEntries((await listBackups(store)).filter((b) => !b.complete).map((b) => [b.name, b.problem]));
    expect(why.vmb).to.equal('memory://test/vmb is a vmbackup backup, not one of ours (no victoria_complete.ignore): restore it with vmrestore');
    expect(why.roots).to.match(/^memory:\/\/test\/roots holds objects but no backup of ours .*a root of backups\? list them with: velero-plugin-victoria list --dst memory:\/\/test\/roots\)/);
    // A missing backup names the root to list, or says that the root itself holds nothing.
    let missing: Error | undefined;
    await openBackup(store, 'nope').catch((e: Error) => (missing = e));
    expect(missing?.message).to.equal('memory://test/nope does not exist (no objects under it); list the backups with: velero-plugin-victoria list --dst memory://test');
    await openBackup(new MemoryStore(), 'nope').catch((e: Error) => (missing = e));
    expect(missing?.message).to.equal('memory://test/nope does not exist, nor does anything under memory://test: check the root of the location (bucket, prefix or directory)');
  });

  it('a marker whose manifest was replaced is not a base', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    await backupsInOrder(store, snapshot, ['b1', 'b2']);
    store.objects.set(`b2/${MANIFEST_KEY}`, Buffer.from(store.objects.get(`b2/${MANIFEST_KEY}`)!.toString('utf8').replace('"b2"', '"bX"')));
    expect((await newestComplete(store))?.name).to.equal('b1');
  });

  it('a marker whose manifest is gone (a partial copy or deletion) is skipped, not an error for the next backup or the listing', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    await backupsInOrder(store, snapshot, ['b1', 'b2']);
    store.objects.delete(`b2/${MANIFEST_KEY}`);
    expect((await newestComplete(store))?.name).to.equal('b1');
    const listing = await listBackups(store);
    expect(listing.map((b) => [b.name, b.complete])).to.deep.equal([['b1', true], ['b2', false]]);
    expect(listing[1]!.problem).to.equal(`memory://test/b2 has a complete marker but no ${MANIFEST_KEY}: it was partly deleted or copied; use another backup`);
    const b3 = await backupOf(store, snapshot, 'b3', { base: (await newestComplete(store))! });
    expect(b3.basedOn, 'the next backup copies from b1').to.equal('b1');
  });

  it('a backup whose marker or manifest the store will not hand out (archived, denied) is passed over, said, and listed as unusable; the others stay usable', async () => {
    const { snapshot } = makeSnapshot();
    const store = new MemoryStore();
    await backupsInOrder(store, snapshot, ['b1', 'b2', 'b3']);
    const get = store.get.bind(store);
    const archived = new StoreError('Failed', 'get memory://test/b3/victoria_complete.ignore: the object is in an archive storage class (InvalidObjectState)', { operation: 'get', backendCode: 'InvalidObjectState' });
    const denied = new StoreError('AccessDenied', 'get memory://test/b2/manifest: access denied', { operation: 'get' });
    store.get = async (key, range) => (key.startsWith('b3/') ? Promise.reject(archived) : key === `b2/${MANIFEST_KEY}` ? Promise.reject(denied) : get(key, range));
    const passed: string[] = [];
    const base = await newestComplete(store, '', { onUnreadable: (name, why, isArchived) => passed.push(`${name}: ${why}${isArchived ? ' (archived)' : ''}`) });
    expect(base?.name).to.equal('b1');
    expect(passed.sort()).to.deep.equal([`b2: ${denied.message}`, `b3: ${archived.message} (archived)`]);
    const listing = await listBackups(store);
    expect(listing.map((b) => [b.name, b.complete, b.problem])).to.deep.equal([['b1', true, undefined], ['b2', false, denied.message], ['b3', false, archived.message]]);
    // Wrong credentials are not one backup's problem: they fail the lookup.
    store.get = async () => Promise.reject(new StoreError('Credentials', 'the secret key is wrong', { operation: 'get' }));
    let err: Error | undefined;
    await newestComplete(store).catch((e: Error) => (err = e));
    expect(err?.message).to.equal('the secret key is wrong');
  });

  it('finds nothing in an empty root and fails on a store error instead of skipping', async () => {
    const store = new MemoryStore();
    expect(await newestComplete(store)).to.equal(undefined);
    store.objects.set('b1/some-object', Buffer.from('x'));
    const get = store.get.bind(store);
    store.get = async (key) => (key.endsWith(COMPLETE_KEY) ? Promise.reject(new Error('connection reset')) : get(key));
    let err: Error | undefined;
    await newestComplete(store).catch((e: Error) => (err = e));
    expect(err?.message).to.equal('connection reset');
  });
});
