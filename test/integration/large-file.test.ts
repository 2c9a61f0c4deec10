/**
 * A file above vmbackup's 1 GiB part size is stored as several objects (vmbackup's layout), as
 * VictoriaMetrics' large parts are in production: written across the part boundary, copied part by
 * part by an incremental, verified, restored by our engine and by stock vmrestore, byte for byte.
 * Through file:// (a sparse source file, so the test costs disk writes, not a 1 GiB upload to
 * moto); the part arithmetic is the same for every store.
 */
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, rmSync, writeSync, ftruncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeBackup, type BaseBackup } from '../../src/engine/backup.js';
import { listSnapshotFiles, localFileReader } from '../../src/engine/files.js';
import { restoreBackup } from '../../src/engine/restore.js';
import { verifyBackup } from '../../src/engine/verify.js';
import { FileStore } from '../../src/store/file.js';
import { paths, requireComponents } from '../support/components.js';
import { runCommand } from '../support/run-command.js';

const GiB = 1024 ** 3;
const SIZE = GiB + 3 * 1024 * 1024 + 5;
const REL = 'data/small/2026_11/18EA838B0B1EDF23/values.bin';

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

describe('a file above the 1 GiB part size: several objects, end to end (file://, stock vmrestore 1.145)', function () {
  this.timeout(600_000);
  let work: string;

  before(function () {
    requireComponents(this, paths.vmrestore145);
    work = mkdtempSync(join(tmpdir(), 'large-file-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('is split at 1 GiB, copied part by part by an incremental, verified, and restored whole by our engine and by vmrestore', async () => {
    // A sparse file with random bytes at its start, across the part boundary and at its end.
    const snapshot = join(work, 'snapshot');
    mkdirSync(join(snapshot, 'data', 'small', '2026_11', '18EA838B0B1EDF23'), { recursive: true });
    writeFileSync(join(snapshot, 'data', 'small', '2026_11', 'parts.json'), '{"Small":["18EA838B0B1EDF23"]}');
    const fd = openSync(join(snapshot, REL), 'w');
    try {
      ftruncateSync(fd, SIZE);
      for (const at of [0, GiB - 4096, SIZE - 65_536]) writeSync(fd, randomBytes(at === GiB - 4096 ? 8192 : 4096), 0, undefined, at);
    } finally {
      closeSync(fd);
    }
    const source = await sha256(join(snapshot, REL));
    const store = new FileStore(join(work, 'store'));
    const files = await listSnapshotFiles(snapshot);
    const backup = (name: string, base?: BaseBackup) =>
      writeBackup({
        store,
        name,
        kind: 'metrics',
        trees: [{ prefix: '', restoreTo: '', files, reader: localFileReader(snapshot) }],
        source: { snapshots: ['S1'] },
        counted: { counts: {} },
        createdAt: new Date(),
        ...(base ? { base } : {}),
      });

    const first = await backup('b1');
    const parts = readdirSync(join(work, 'store', 'b1', REL)).sort();
    expect(parts).to.deep.equal([
      `${SIZE.toString(16).toUpperCase().padStart(16, '0')}_0000000000000000_0000000040000000`,
      `${SIZE.toString(16).toUpperCase().padStart(16, '0')}_0000000040000000_${(SIZE - GiB).toString(16).toUpperCase().padStart(16, '0')}`,
    ]);

    // Unchanged since b1: both parts are copies, nothing is uploaded but the mutable parts.json.
    const second = await backup('b2', { name: 'b1', manifest: first });
    expect(second.totals.bytesCopied).to.equal(SIZE);
    expect(second.totals.bytesUploaded).to.be.lessThan(1024);
    const verified = await verifyBackup(store, 'b2');
    expect(verified.problems).to.deep.equal([]);
    expect(verified.ok).to.equal(true);

    const ours = join(work, 'restored-ours');
    await restoreBackup({ store, name: 'b2', dataDir: ours });
    expect(await sha256(join(ours, REL))).to.equal(source);
    rmSync(ours, { recursive: true, force: true });

    const theirs = join(work, 'restored-vmrestore');
    const vr = await runCommand(paths.vmrestore145, ['-httpListenAddr=127.0.0.1:0', `-src=fs://${join(work, 'store', 'b2')}`, `-storageDataPath=${theirs}`], process.env);
    expect(vr.status, vr.stderr).to.equal(0);
    expect(await sha256(join(theirs, REL))).to.equal(source);
  });
});
