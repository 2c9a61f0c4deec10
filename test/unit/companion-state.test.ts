/** The recorded snapshot set and its expiry by `serve`, with a fake server. */
import { expect } from 'chai';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CompanionConfig } from '../../src/companion/config.js';
import { CompanionError } from '../../src/companion/errors.js';
import { COMPANION_EXIT } from '../../src/companion/protocol.js';
import { expireRecorded } from '../../src/companion/serve.js';
import { readRecord, recordPath, STATE_FORMAT, writeRecord, type RecordedSet } from '../../src/companion/state.js';
import type { Snapshot, SnapshotSource } from '../../src/victoria/types.js';

const snapshot = (name: string): Snapshot => ({
  kind: 'logs',
  name,
  handle: `/data/partitions/20260101/snapshots/${name}`,
  dir: `partitions/20260101/snapshots/${name}`,
  relPathPrefix: 'partitions/20260101/',
  followSymlinks: false,
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

  it('keeps a record that a hook pre wrote while the old set was being deleted', async () => {
    await writeRecord(config.stateDir, record('20260101100000-AA', '2026-01-01T10:00:00.000Z'));
    const newer = record('20260101170000-BB', '2026-01-01T17:00:00.000Z');
    await expireRecorded(config, fakeSource(() => writeRecord(config.stateDir, newer)), new Date('2026-01-01T17:00:00Z'), log);
    expect(await readRecord(config.stateDir)).to.deep.equal(newer);
  });
});
