/** The engine's reader of the companion's tar streams (src/engine/tar-reader.ts). */
import { expect } from 'chai';
import { PassThrough, Readable } from 'node:stream';
import { pack } from 'tar-stream';
import type { SnapshotFile } from '../../src/engine/files.js';
import { tarFileReader } from '../../src/engine/tar-reader.js';

function tarOf(files: Array<{ path: string; body: Buffer }>): Readable {
  const p = pack();
  for (const f of files) p.entry({ name: f.path, size: f.body.length }, f.body);
  p.finalize();
  return p as unknown as Readable;
}

const file = (path: string, size: number): SnapshotFile => ({ path, size, mtimeMs: 0 });

describe('tar reader', () => {
  it('hands out the requested files in order, across parallel streams, with their bytes', async () => {
    const bodies = new Map([...'abcde'].map((c, i) => [`dir/${c}`, Buffer.alloc(1000 * (i + 1), c)]));
    const reader = tarFileReader(async (files) => tarOf(files.map((f) => ({ path: f.path, body: bodies.get(f.path)! }))), { streams: 2 });
    const seen = new Map<string, Buffer>();
    for await (const entry of reader.read([...bodies].map(([p, b]) => file(p, b.length)))) {
      const chunks: Buffer[] = [];
      for await (const c of entry.stream) chunks.push(c);
      seen.set(entry.file.path, Buffer.concat(chunks));
    }
    expect([...seen.keys()].sort()).to.deep.equal([...bodies.keys()]);
    for (const [p, b] of bodies) expect(seen.get(p)!.equals(b), p).to.equal(true);
  });

  it('closed early (an upload failed), ends every stream at once, also one waiting for an entry nobody will read', async () => {
    const bodies = [...'abcd'].map((c) => ({ path: c, body: Buffer.alloc(256 * 1024, c) }));
    const opened: Readable[] = [];
    const reader = tarFileReader(
      async (files) => {
        const tar = tarOf(bodies.filter((b) => files.some((f) => f.path === b.path)));
        opened.push(tar);
        return tar;
      },
      { streams: 2 },
    );
    const entries = reader.read(bodies.map((b) => file(b.path, b.body.length)))[Symbol.asyncIterator]();
    // a and b are handed out (one per stream), and each stream waits for its entry to be read
    // before it parses c or d; the workers holding a and b fail without reading them.
    const first = await entries.next();
    const second = await entries.next();
    expect([first.value?.file.path, second.value?.file.path].sort()).to.deep.equal(['a', 'b']);
    const closed = await Promise.race([entries.return!(undefined).then(() => 'closed'), new Promise((resolve) => setTimeout(() => resolve('still waiting'), 2000))]);
    expect(closed).to.equal('closed');
    expect(opened.map((t) => t.destroyed)).to.deep.equal([true, true]);
  });

  it('fails on a size that differs from the listing, naming the file', async () => {
    const reader = tarFileReader(async () => tarOf([{ path: 'x', body: Buffer.alloc(10) }]));
    let error: Error | undefined;
    try {
      for await (const entry of reader.read([file('x', 11)])) for await (const _ of entry.stream) void _;
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).to.match(/x has 10 bytes in the tar stream, 11 were listed/);
  });

  it('when every stream breaks, the read fails once and no rejection is left unhandled (it would end the plugin)', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const reader = tarFileReader(
        async (files) => {
          // The first entry's header and a part of its body arrive, then the connection breaks.
          const whole: Buffer[] = [];
          for await (const chunk of tarOf(files.map((f) => ({ path: f.path, body: Buffer.alloc(f.size, 1) })))) whole.push(chunk as Buffer);
          const out = new PassThrough();
          out.write(Buffer.concat(whole).subarray(0, 600));
          setTimeout(() => out.destroy(new Error('exec stream ended without an exit status')), 20);
          return out;
        },
        { streams: 3 },
      );
      let error: Error | undefined;
      try {
        for await (const entry of reader.read([file('a', 5000), file('b', 5000), file('c', 5000), file('d', 5000)])) for await (const _ of entry.stream) void _;
      } catch (err) {
        error = err as Error;
      }
      expect(error?.message).to.match(/without an exit status/);
      await new Promise((r) => setTimeout(r, 100));
      expect(unhandled).to.deep.equal([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
