import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFile, directIoWorks, FileWriter, WRITE_BATCH, WriteBuffers } from '../../src/engine/file-writer.js';

describe('file writer (restore writes, O_DIRECT where it works)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'file-writer-'));

  it('finds O_DIRECT working on this machine\'s disk and leaves no probe file behind', async () => {
    // CI and the bench run on ext4: a false here would silently cost every restore the page-cache copy.
    expect(await directIoWorks(dir, new WriteBuffers(4))).to.equal(true);
    expect(readdirSync(dir)).to.deep.equal([]);
    // A probe left by a killed run with the same pid (an init container's rerun) does not stop the next one.
    writeFileSync(join(dir, `.direct-io-probe-${process.pid}`), 'left over');
    expect(await directIoWorks(dir, new WriteBuffers(4))).to.equal(true);
    expect(readdirSync(dir)).to.deep.equal([]);
  });

  for (const direct of [true, false]) {
    it(`writes files of every size byte for byte, fed in uneven chunks (${direct ? 'O_DIRECT' : 'page cache'})`, async () => {
      const buffers = new WriteBuffers(4);
      // Empty, under one block, one block, block + 1, one buffer, buffer + 1, several buffers and a tail.
      for (const size of [0, 1, 4095, 4096, 4097, WRITE_BATCH, WRITE_BATCH + 1, 3 * WRITE_BATCH + 12345]) {
        const data = randomBytes(size);
        const path = join(dir, `${direct ? 'd' : 'b'}-${size}`);
        const fh = await createFile(path, direct);
        const out = new FileWriter(fh, buffers, direct, path);
        // Chunks of 1 to 300 000 bytes, as socket reads come.
        for (let off = 0, step = 1; off < size; off += step, step = (step * 7 + 13) % 300_000 || 1) {
          await out.write(data.subarray(off, Math.min(size, off + step)));
        }
        expect(await out.close()).to.equal(size);
        await fh.close();
        const back = readFileSync(path);
        expect(back.length, `size of ${path}`).to.equal(size);
        expect(back.equals(data), `bytes of ${path}`).to.equal(true);
      }
    });
  }

  it('without page-aligned buffers (no WebAssembly memory to be had) O_DIRECT is not tried', async () => {
    // More than a 32-bit WebAssembly memory holds (4 GiB): V8 refuses it, as under an address-space limit.
    const plain = new WriteBuffers(5000);
    expect(plain.aligned).to.equal(false);
    expect(await directIoWorks(dir, plain)).to.equal(false);
    expect(plain.take().length).to.equal(WRITE_BATCH);
  });

  it('a write the file system refuses with O_DIRECT names the file and the way around it', async () => {
    const odd = new WriteBuffers(5000); // ordinary buffers (see above)
    odd.give(Buffer.alloc(WRITE_BATCH + 1).subarray(1)); // and one whose address is certainly not aligned
    const path = join(dir, 'refused');
    const fh = await createFile(path, true);
    let err: Error | undefined;
    try {
      const out = new FileWriter(fh, odd, true, path);
      await out.write(Buffer.alloc(WRITE_BATCH, 1));
      await out.close();
    } catch (e) {
      err = e as Error;
    } finally {
      await fh.close();
    }
    expect(err?.message).to.include(`${path}: the file system refused a write with O_DIRECT`).and.include('--no-direct-io').and.include('restoreDirectIo: "false"');
  });

  it('never opens an existing file', async () => {
    const buffers = new WriteBuffers(4);
    const fh = await createFile(join(dir, 'exists'), true);
    await new FileWriter(fh, buffers, true, join(dir, 'exists')).close();
    await fh.close();
    let err: NodeJS.ErrnoException | undefined;
    await createFile(join(dir, 'exists'), true).catch((e: NodeJS.ErrnoException) => (err = e));
    expect(err?.code).to.equal('EEXIST');
  });
});
