/**
 * The file:// store: atomic writes, copies by hard link or copy, listings in S3 key order, range
 * reads, deletes that tidy empty directories, and keys that cannot leave the root.
 */
import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { StoreError } from '../../src/store/errors.js';
import { commonFolder, FileStore } from '../../src/store/file.js';
import { compareKeys } from '../../src/store/keys.js';
import { readAll, collect, rejection } from '../support/store-helpers.js';




/** Every file under dir, relative, including temporary ones. */
function allFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...allFiles(dir, r));
    else out.push(r);
  }
  return out.sort();
}

describe('file store', () => {
  let dir: string;
  let store: FileStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'file-store-'));
    store = new FileStore(join(dir, 'root'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes keys as files under the root (the vmbackup fs:// layout), and reads them back', async () => {
    expect(store.location).to.equal(`file://${join(dir, 'root')}`);
    const key = 'b1/data/small/2026_11/18EA/index.bin/0000000000000005_0000000000000000_0000000000000005';
    await store.put(key, Buffer.from('hello'), 5);
    expect(readFileSync(join(dir, 'root', ...key.split('/')), 'utf8')).to.equal('hello');
    expect((await readAll(await store.get(key))).toString()).to.equal('hello');
    const info = await store.head(key);
    expect(info).to.include({ key, size: 5 });
    expect(info?.lastModified).to.be.instanceOf(Date);
    expect(await store.head('b1/nothing')).to.equal(undefined);
    expect(await store.head('b1/data')).to.equal(undefined); // a directory is not an object
  });

  it('streams a body, and refuses one that is shorter or longer than announced without leaving anything', async () => {
    await store.put('s', Readable.from([Buffer.from('ab'), Buffer.from('cd')]), 4);
    expect((await readAll(await store.get('s'))).toString()).to.equal('abcd');
    await store.put('s', Buffer.from('old'), 3);
    expect((await rejection(store.put('s', Readable.from([Buffer.from('abc')]), 4))).code).to.equal('SizeMismatch');
    expect((await rejection(store.put('s', Readable.from([Buffer.from('abcde')]), 4))).code).to.equal('SizeMismatch');
    expect((await rejection(store.put('t', Buffer.from('abc'), 4))).code).to.equal('SizeMismatch');
    // The old object is intact, and no temporary file is left.
    expect((await readAll(await store.get('s'))).toString()).to.equal('old');
    expect(allFiles(join(dir, 'root'))).to.deep.equal(['s']);
  });

  it('is atomic: a failing stream leaves the old object, a reader never sees a partial one', async () => {
    await store.put('obj', Buffer.from('version 1'), 9);
    const body = new PassThrough();
    const put = store.put('obj', body, 9);
    body.write('vers');
    // Mid-write: once the first bytes are in the temporary file beside it, readers and listings see the old object only.
    const temporary = () => allFiles(join(dir, 'root')).filter((f) => f !== 'obj');
    for (let i = 0; !(temporary().length === 1 && statSync(join(dir, 'root', temporary()[0]!)).size === 4); i++) {
      if (i > 500) expect.fail(`the put never wrote its first 4 bytes to a temporary file; the root holds ${JSON.stringify(allFiles(join(dir, 'root')))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect((await readAll(await store.get('obj'))).toString()).to.equal('version 1');
    expect((await collect(store.list(''))).map((o) => o.key)).to.deep.equal(['obj']);
    body.destroy(new Error('source broke'));
    const err = await rejection(put);
    expect(err.message).to.contain('source broke');
    expect((await readAll(await store.get('obj'))).toString()).to.equal('version 1');
    expect(allFiles(join(dir, 'root'))).to.deep.equal(['obj']);
    // A read that started before a replacement keeps reading the old bytes.
    const reading = await store.get('obj');
    await store.put('obj', Buffer.from('version 2'), 9);
    expect((await readAll(reading)).toString()).to.equal('version 1');
    expect((await readAll(await store.get('obj'))).toString()).to.equal('version 2');
  });

  it('reads byte ranges like S3: end clipped, start beyond the end refused', async () => {
    await store.put('r', Buffer.from('0123456789'), 10);
    expect((await readAll(await store.get('r', { start: 2, end: 4 }))).toString()).to.equal('234');
    expect((await readAll(await store.get('r', { start: 8, end: 100 }))).toString()).to.equal('89');
    expect((await rejection(store.get('r', { start: 10, end: 12 }))).code).to.equal('InvalidRange');
    expect((await rejection(store.get('r', { start: 5, end: 4 }))).code).to.equal('InvalidRange');
    const missing = await rejection(store.get('none'));
    expect(missing.code).to.equal('NotFound');
    expect(missing.message).to.equal(`get: object ${store.location}/none does not exist`);
  });

  it('lists in S3 key order (UTF-8 bytes, "a-b" before "a/b"), by prefix, and lists "directories"', async () => {
    const keys = ['a/b', 'a-b', 'a0', 'a/c/d', 'b/ü', 'b/z', 'é', 'z', '日本', '𝄞', '\uffff', 'c/1', 'c/2/x'];
    for (const k of keys) await store.put(k, Buffer.from(k), Buffer.byteLength(k));
    const listed = await collect(store.list(''));
    expect(listed.map((o) => o.key)).to.deep.equal([...keys].sort(compareKeys));
    expect(listed.find((o) => o.key === 'é')?.size).to.equal(2);
    expect((await collect(store.list('a'))).map((o) => o.key)).to.deep.equal(['a-b', 'a/b', 'a/c/d', 'a0']);
    expect((await collect(store.list('a/'))).map((o) => o.key)).to.deep.equal(['a/b', 'a/c/d']);
    expect((await collect(store.list('a/c/d'))).map((o) => o.key)).to.deep.equal(['a/c/d']);
    expect(await collect(store.list('nothing/'))).to.deep.equal([]);
    // Empty directories (left by a crash) are not "directories" of objects.
    mkdirSync(join(dir, 'root', 'empty', 'deeper'), { recursive: true });
    expect(await store.listDirectories('')).to.deep.equal(['a/', 'b/', 'c/']);
    expect(await store.listDirectories('c/')).to.deep.equal(['c/2/']);
    expect(await store.listDirectories('x/')).to.deep.equal([]);
    expect(await new FileStore(join(dir, 'absent')).listDirectories('')).to.deep.equal([]);
  });

  it('never lists temporary files or symlinks', async () => {
    await store.put('k', Buffer.from('v'), 1);
    writeFileSync(join(dir, 'root', '.vpv-tmp-deadbeef'), 'partial');
    symlinkSync(join(dir, 'root', 'k'), join(dir, 'root', 'link'));
    expect((await collect(store.list(''))).map((o) => o.key)).to.deep.equal(['k']);
  });

  it('copies by hard link, replacing the target atomically; a later put to the source does not change the copy', async () => {
    await store.put('src/obj', Buffer.from('data'), 4);
    await store.put('dst/obj', Buffer.from('older'), 5);
    await store.copy('src/obj', 'dst/obj', 4);
    const a = statSync(join(dir, 'root', 'src', 'obj'));
    const b = statSync(join(dir, 'root', 'dst', 'obj'));
    expect(b.ino).to.equal(a.ino);
    expect(b.nlink).to.equal(2);
    await store.copy('src/obj', 'dst/obj', 4); // already the same file: nothing to do, nothing left over
    await store.put('src/obj', Buffer.from('DATA'), 4);
    expect((await readAll(await store.get('dst/obj'))).toString()).to.equal('data');
    expect(allFiles(join(dir, 'root'))).to.deep.equal(['dst/obj', 'src/obj']);
  });

  it('copies bytes when hard links are off, and checks the size and the source', async () => {
    const plain = new FileStore(join(dir, 'root'), { hardLinks: false });
    await plain.put('src', Buffer.from('data'), 4);
    await plain.copy('src', 'dst/x', 4);
    expect(statSync(join(dir, 'root', 'dst', 'x')).ino).not.to.equal(statSync(join(dir, 'root', 'src')).ino);
    expect((await readAll(await plain.get('dst/x'))).toString()).to.equal('data');
    expect((await rejection(plain.copy('src', 'dst/y', 5))).code).to.equal('SizeMismatch');
    expect((await rejection(plain.copy('none', 'dst/y', 5))).code).to.equal('NotFound');
    expect(await plain.head('dst/y')).to.equal(undefined);
  });

  it('deletes objects, tolerates missing keys, and removes directories left empty (never the root)', async () => {
    await store.put('x/y/z/1', Buffer.from('1'), 1);
    await store.put('x/y/2', Buffer.from('2'), 1);
    await store.put('top', Buffer.from('t'), 1);
    await store.delete(['x/y/z/1', 'x/y/missing', 'never/was', 'x/y/z/1']);
    expect(existsSync(join(dir, 'root', 'x', 'y', 'z'))).to.equal(false);
    expect(existsSync(join(dir, 'root', 'x', 'y', '2'))).to.equal(true);
    await store.delete(['x/y/2', 'top']);
    expect(readdirSync(join(dir, 'root'))).to.deep.equal([]);
    await store.delete([]);
    await store.delete(['x']); // neither an object nor there: fine
  });

  it('a deletion sweeps the temporary files of killed writes from directories it empties, once they are stale, within the deleted keys\' folder', async () => {
    const killedWrite = (rel: string) => {
      mkdirSync(join(dir, 'root', ...rel.split('/').slice(0, -1)), { recursive: true });
      writeFileSync(join(dir, 'root', ...rel.split('/')), 'partial');
    };
    for (const key of ['ns/b1/marker', 'ns/b1/p1/values.bin', 'ns/b1/p2/values.bin', 'ns/b1/p2/index.bin', 'ns/b0/p/values.bin']) await store.put(key, Buffer.from('1'), 1);
    killedWrite('ns/b1/p1/.vpv-tmp-0123456789abcdef');
    killedWrite('ns/b1/p2/.vpv-tmp-fedcba9876543210');
    killedWrite('ns/b0/q/.vpv-tmp-00000000000000aa'); // another backup's killed part directory
    const before = allFiles(join(dir, 'root'));
    // Fresh: it may be a write in progress, so the directory stays.
    await store.delete(['ns/b1/p1/values.bin']);
    expect(allFiles(join(dir, 'root'))).to.deep.equal(before.filter((f) => f !== 'ns/b1/p1/values.bin'));

    // Stale: a directory the deletion would remove is swept, with every stale temporary file
    // below it (ns/b1/p1 holds only one, and no key leads there); objects stay, with their
    // directories. Above the deleted keys' folder (ns/b1) nothing is walked: ns/b0 keeps its own.
    const sweeping = new FileStore(join(dir, 'root'), { staleTempMs: 0 });
    await sweeping.delete(['ns/b1/p2/values.bin', 'ns/b1/marker']);
    expect(allFiles(join(dir, 'root'))).to.deep.equal(['ns/b0/p/values.bin', 'ns/b0/q/.vpv-tmp-00000000000000aa', 'ns/b1/p2/index.bin']);
    await sweeping.delete(['ns/b1/p2/index.bin']);
    expect(readdirSync(join(dir, 'root', 'ns'))).to.deep.equal(['b0']);
  });

  it('commonFolder: the deepest folder holding every key', () => {
    expect(commonFolder(['a/b/c/x', 'a/b/y'])).to.equal('a/b');
    expect(commonFolder(['a/b/x'])).to.equal('a/b');
    expect(commonFolder(['a/x', 'b/y'])).to.equal('');
    expect(commonFolder(['x'])).to.equal('');
    expect(commonFolder(['a/bc/x', 'a/b/x'])).to.equal('a');
  });

  it('refuses keys that could leave the root, and reserved names', async () => {
    for (const key of ['../escape', 'a/../../b', '/etc/passwd', 'a\\b', 'a//b', 'a/', '', '.', 'a/./b', 'a/.vpv-tmp-1', 'nul\0']) {
      const err = await rejection(store.put(key, Buffer.from('x'), 1));
      expect(err.code, key).to.equal('InvalidKey');
    }
    expect((await rejection(store.get('../x'))).code).to.equal('InvalidKey');
    expect((await rejection(store.copy('a', '../b', 1))).code).to.equal('InvalidKey');
    expect((await rejection(store.delete(['ok', '../no']))).code).to.equal('InvalidKey');
    expect((await rejection(collect(store.list('../')))).code).to.equal('InvalidKey');
    expect(existsSync(join(dir, 'escape'))).to.equal(false);
    expect(() => new FileStore('relative/dir')).to.throw(StoreError, /absolute/);
  });

  it('explains a key that is both an object and a "directory"', async () => {
    await store.put('a', Buffer.from('x'), 1);
    const err = await rejection(store.put('a/b', Buffer.from('x'), 1));
    expect(err.message).to.match(/a parent of this key is an object/);
    await store.put('c/d', Buffer.from('x'), 1);
    expect((await rejection(store.put('c', Buffer.from('x'), 1))).message).to.match(/other keys exist below this key/);
  });

  it('handles many parallel writers to the same key: the last rename wins, nothing partial, no leftovers', async () => {
    const bodies = Array.from({ length: 20 }, (_, i) => Buffer.alloc(64 * 1024, i));
    await Promise.all(bodies.map((b) => store.put('same', b, b.length)));
    const final = await readAll(await store.get('same'));
    expect(bodies.some((b) => b.equals(final))).to.equal(true);
    expect(allFiles(join(dir, 'root'))).to.deep.equal(['same']);
  });
});
