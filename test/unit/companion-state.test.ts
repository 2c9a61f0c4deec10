/** The recorded snapshot set and its expiry by `serve`, with a fake server. */
import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CompanionConfig } from '../../src/companion/config.js';
import { CompanionError } from '../../src/companion/errors.js';
import { COMPANION_EXIT } from '../../src/companion/protocol.js';
import { preHook } from '../../src/companion/hooks.js';
import { expireRecorded } from '../../src/companion/serve.js';
import { acquireStateLock, lockPath, withStateLock } from '../../src/companion/state-lock.js';
import { markInUse, readRecord, recordPath, STATE_FORMAT, writeRecord, type RecordedSet } from '../../src/companion/state.js';
import { VictoriaUnreachableError } from '../../src/victoria/errors.js';
import type { Snapshot, SnapshotSource } from '../../src/victoria/types.js';

const snapshot = (name: string): Snapshot => ({
  kind: 'logs',
  name,
  handle: `/data/partitions/20260101/snapshots/${name}`,
  dir: `partitions/20260101/snapshots/${name}`,
  relPathPrefix: 'partitions/20260101/',
  partition: '20260101',
  createdAt: new Date('2026-01-01T10:00:00Z'),
});

const record = (name: string, createdAt: string): RecordedSet => ({
  format: STATE_FORMAT,
  kind: 'logs',
  url: 'http://vl:9428',
  createdAt,
  snapshots: [snapshot(name)],
});

/** Records what it was asked to delete; `onDelete` runs in the middle (e.g. a concurrent hook pre). */
function fakeSource(onDelete: () => Promise<void> = async () => undefined): SnapshotSource & { deleted: string[] } {
  const deleted: string[] = [];
  return {
    kind: 'logs',
    url: 'http://vl:9428',
    deleted,
    async delete(snapshots) {
      deleted.push(...snapshots.map((s) => s.name));
      await onDelete();
    },
    create: () => Promise.reject(new Error('unused')),
    list: () => Promise.reject(new Error('unused')),
    deleteStale: () => Promise.reject(new Error('unused')),
    counts: () => Promise.reject(new Error('unused')),
    countStart: () => Promise.reject(new Error('unused')),
    version: () => Promise.resolve(undefined),
  };
}

describe('companion state and expiry', () => {
  let dir: string;
  let config: CompanionConfig;
  const lines: string[] = [];
  const log = (line: string): void => void lines.push(line);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'companion-state-'));
    config = {
      kind: 'logs',
      url: 'http://vl:9428',
      dataDir: '/data',
      stateDir: join(dir, 'state'),
      maxSnapshotAgeMs: 6 * 3600_000,
      authKeyOption: '--auth-key',
      forceFlushAuthKeyOption: '--force-flush-auth-key',
    };
    lines.length = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips a record (dates included) and leaves no temporary file', async () => {
    const r = record('20260101100000-AA', '2026-01-01T10:00:00.000Z');
    await writeRecord(config.stateDir, r);
    expect(await readRecord(config.stateDir)).to.deep.equal(r);
    expect(readdirSync(config.stateDir)).to.deep.equal(['snapshots.json']);
  });

  it('reads a record an earlier version wrote (with the since-dropped followSymlinks), keeping only known fields', async () => {
    const r = record('20260101100000-AA', '2026-01-01T10:00:00.000Z');
    const old = { ...r, snapshots: r.snapshots.map((s) => ({ ...s, followSymlinks: false })) };
    await writeRecord(config.stateDir, old as RecordedSet);
    expect(await readRecord(config.stateDir)).to.deep.equal(r);
  });

  it('says what to do with a record it cannot read', async () => {
    await writeRecord(config.stateDir, record('20260101100000-AA', '2026-01-01T10:00:00.000Z'));
    writeFileSync(recordPath(config.stateDir), '{"format":"something else"}');
    const err = await readRecord(config.stateDir).catch((e: unknown) => e as Error);
    expect((err as Error).message).to.include(recordPath(config.stateDir)).and.include('delete the snapshots it names');
  });

  it('names --state-dir when a file stands where its directory should be, on read and on write (exit 2 / 1)', async () => {
    writeFileSync(join(dir, 'file'), 'not a directory');
    const stateDir = join(dir, 'file', 'state');
    const read = (await readRecord(stateDir).catch((e: unknown) => e)) as CompanionError;
    expect(read.message).to.equal(
      `cannot read ${recordPath(stateDir)} (ENOTDIR): --state-dir / COMPANION_STATE_DIR (${stateDir}) must be a writable directory (an emptyDir), and a file is in its way`,
    );
    expect(read.exitCode).to.equal(COMPANION_EXIT.usage);
    const write = (await writeRecord(stateDir, record('20260101100000-AA', '2026-01-01T10:00:00.000Z')).catch((e: unknown) => e)) as Error;
    expect(write.message).to.match(/--state-dir \/ COMPANION_STATE_DIR must be a writable directory/);
  });

  it('expires only a set older than the limit, then clears the record', async () => {
    await writeRecord(config.stateDir, record('20260101100000-AA', '2026-01-01T10:00:00.000Z'));
    const young = fakeSource();
    expect(await expireRecorded(config, young, new Date('2026-01-01T15:59:00Z'), log)).to.deep.equal([]);
    expect(young.deleted).to.deep.equal([]);
    const old = fakeSource();
    expect(await expireRecorded(config, old, new Date('2026-01-01T16:00:01Z'), log)).to.deep.equal(['20260101100000-AA']);
    expect(old.deleted).to.deep.equal(['20260101100000-AA']);
    expect(await readRecord(config.stateDir)).to.equal(undefined);
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/^deleted 1 recorded snapshot\(s\) from 2026-01-01T10:00:00.000Z \(age 6h1s > max-snapshot-age 6h: the backup's post hook never ran\): 20260101100000-AA$/);
  });

  it('ages a set from its last use: one a long backup still reads (files, tar) is kept past the limit', async () => {
    await writeRecord(config.stateDir, record('20260101100000-AA', '2026-01-01T10:00:00.000Z'));
    await markInUse(config.stateDir, new Date('2026-01-01T15:00:00Z'));
    const reading = fakeSource();
    expect(await expireRecorded(config, reading, new Date('2026-01-01T16:00:01Z'), log)).to.deep.equal([]);
    expect(reading.deleted).to.deep.equal([]);
    expect(await expireRecorded(config, fakeSource(), new Date('2026-01-01T21:00:01Z'), log)).to.deep.equal(['20260101100000-AA']);
    expect(lines.at(-1)).to.match(/^deleted 1 recorded snapshot\(s\) from 2026-01-01T10:00:00.000Z \(unused for 6h1s > max-snapshot-age 6h/);
  });

  it('leaves the record alone while a hook holds the lock, and expires it at a later tick', async () => {
    await writeRecord(config.stateDir, record('20260101100000-AA', '2026-01-01T10:00:00.000Z'));
    const release = await acquireStateLock(config.stateDir, 'hook pre', 0);
    const busy = fakeSource();
    expect(await expireRecorded(config, busy, new Date('2026-01-01T17:00:00Z'), log)).to.deep.equal([]);
    expect(busy.deleted).to.deep.equal([]);
    expect((await readRecord(config.stateDir))?.snapshots.map((x) => x.name)).to.deep.equal(['20260101100000-AA']);
    await release!();
    expect(await expireRecorded(config, fakeSource(), new Date('2026-01-01T17:00:05Z'), log)).to.deep.equal(['20260101100000-AA']);
    expect(await readRecord(config.stateDir)).to.equal(undefined);
  });

  it('a create that got no answer names the snapshots made since its request (it may have made them), deleting none', async () => {
    const base = fakeSource();
    const timedOut = new VictoriaUnreachableError('VictoriaLogs POST http://vl:9428/internal/partition/snapshot/create: no answer within 300000 ms', 'http://vl:9428');
    // One made before the request (someone else's, or older) and one in the request's second.
    const earlier = { ...snapshot('20251231235959-CC'), createdAt: new Date('2025-12-31T23:59:59Z') };
    const list = async () => [earlier, { ...snapshot('20260101100000-BB'), createdAt: new Date(Math.floor(Date.now() / 1000) * 1000) }];
    const source: SnapshotSource = { ...base, create: () => Promise.reject(timedOut), list };
    const err = (await preHook(config, source).catch((e: Error) => e)) as Error;
    expect(err).to.be.instanceOf(CompanionError);
    expect(err.message).to.equal(
      `${timedOut.message}; the server may have made the snapshots all the same: 20260101100000-BB appeared since the request, recorded nowhere, ` +
        "so no hook will delete them: unless someone else made them, delete them through the server's snapshot API (docs/companion.md)",
    );
    expect(base.deleted).to.deep.equal([]);
    // An answer the server gave (an HTTP error) made nothing: its error as it is.
    const refused = new Error('HTTP 400: read-only partitions');
    expect(await preHook(config, { ...source, create: () => Promise.reject(refused) }).catch((e: Error) => e)).to.equal(refused);
  });

  it('runs one hook at a time: two pre hooks at once leave no snapshot untracked', async () => {
    config = { ...config, dataDir: dir };
    const made: string[] = [];
    const base = fakeSource();
    const source: SnapshotSource = {
      ...base,
      async create() {
        const name = `2026010110000${made.length}-AA`;
        made.push(name);
        mkdirSync(join(dir, 'partitions/20260101/snapshots', name), { recursive: true });
        await new Promise((r) => setTimeout(r, 200)); // the window in which the other hook would read the old record
        return [snapshot(name)];
      },
      async deleteStale(recorded) {
        base.deleted.push(...recorded.map((s) => s.name));
        return [...recorded];
      },
    };
    const [a, b] = await Promise.all([preHook(config, source), preHook(config, source)]);
    expect(made).to.have.length(2);
    // The second hook found the first one's record and removed its snapshots as stale.
    expect([...a.staleRemoved, ...b.staleRemoved]).to.deep.equal([made[0]]);
    expect((await readRecord(config.stateDir))?.snapshots.map((x) => x.name)).to.deep.equal([made[1]]);
    expect(existsSync(lockPath(config.stateDir)), 'the lock is released').to.equal(false);
  });

  it('waits for a live holder of the lock, naming it; takes over a dead one\'s (also a reused PID, an empty file left behind)', async () => {
    const release = await acquireStateLock(config.stateDir, 'hook pre', 0);
    expect(release).to.be.a('function');
    expect(await acquireStateLock(config.stateDir, 'serve', 0), 'held: serve skips').to.equal(undefined);
    const busy = (await withStateLock(config.stateDir, 'hook post', 1000, async () => 'ran').catch((e: unknown) => e)) as Error;
    expect(busy.message).to.equal(
      `another companion command (hook pre, pid ${process.pid}) has held ${lockPath(config.stateDir)} for more than 1 s: ` +
        'two backups of this pod at once? Wait for it; if no companion command runs any more, remove the file',
    );
    await release!();
    expect(await withStateLock(config.stateDir, 'hook post', 1000, async () => 'ran')).to.equal('ran');
    // A holder that is gone, our PID with another start time (a reused PID), an empty file from a writer killed mid-way.
    for (const left of ['2147483646 123 hook pre\n', `${process.pid} 1 hook pre\n`, '']) {
      writeFileSync(lockPath(config.stateDir), left);
      if (left === '') utimesSync(lockPath(config.stateDir), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
      expect(await withStateLock(config.stateDir, 'hook pre', 1000, async () => 'ran'), JSON.stringify(left)).to.equal('ran');
      expect(existsSync(lockPath(config.stateDir))).to.equal(false);
    }
    // An empty file just made is a writer at work.
    writeFileSync(lockPath(config.stateDir), '');
    expect(await acquireStateLock(config.stateDir, 'serve', 0)).to.equal(undefined);
    rmSync(lockPath(config.stateDir));
  });

  it('a dead holder\'s lock is taken over by one of those who find it at once, never by two', async () => {
    mkdirSync(config.stateDir, { recursive: true });
    for (let round = 0; round < 20; round++) {
      writeFileSync(lockPath(config.stateDir), '2147483646 123 hook pre\n');
      // Each one that finds the dead lock removes it; without a guard, one removes the lock another just took.
      const releases = await Promise.all(Array.from({ length: 6 }, (_, i) => acquireStateLock(config.stateDir, `hook ${i}`, 0)));
      const held = releases.filter((r) => r !== undefined);
      expect(held, `round ${round}`).to.have.length(1);
      await held[0]!();
      expect(readdirSync(config.stateDir).filter((f) => f.startsWith('lock')), 'nothing left beside the record').to.deep.equal([]);
    }
  });
});
