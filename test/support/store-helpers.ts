/** Small helpers shared by the object-store tests. */
import { expect } from 'chai';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { writeBackup } from '../../src/engine/backup.js';
import { listSnapshotFiles, localFileReader } from '../../src/engine/files.js';
import { FileStore } from '../../src/store/file.js';
import { StoreError } from '../../src/store/errors.js';

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** The StoreError a promise rejects with; fails the test if it resolves or throws anything else. */
export async function rejection(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(StoreError);
    return err as StoreError;
  }
  throw new Error('expected a rejection');
}

/** A complete metrics backup `b1` in the file:// store `dir/store`, of a snapshot `dir/snapshot` holding `files` (path: content). */
export async function writeSmallBackup(dir: string, files: Record<string, string>): Promise<void> {
  const src = join(dir, 'snapshot');
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(src, path)), { recursive: true });
    writeFileSync(join(src, path), content);
  }
  await writeBackup({
    store: new FileStore(join(dir, 'store')),
    name: 'b1',
    kind: 'metrics',
    trees: [{ prefix: '', restoreTo: '', files: await listSnapshotFiles(src), reader: localFileReader(src) }],
    source: { snapshots: [] },
    counted: { counts: {} },
    createdAt: new Date(),
  });
}
