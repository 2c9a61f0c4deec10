import { expect } from 'chai';
import { mkdtempSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lockHolderOf, seesEveryLock } from '../../src/engine/db-lock.js';

describe('db lock: a running database found through /proc/locks', () => {
  it('finds the holder of <dir>/flock.lock by device and inode; waiters, other files and missing files are not holders', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'db-lock-'));
    const locks = join(dir, 'locks');
    writeFileSync(join(dir, 'flock.lock'), '');
    const st = statSync(join(dir, 'flock.lock'));
    const dev = BigInt(st.dev);
    const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn)).toString(16).padStart(2, '0');
    const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn)).toString(16).padStart(2, '0');
    const id = `${major}:${minor}:${st.ino}`;
    const other = `${major}:${minor}:${st.ino + 1}`;

    writeFileSync(locks, `1: POSIX  ADVISORY  WRITE 17 ${other} 0 EOF\n2: FLOCK  ADVISORY  WRITE 4242 ${id} 0 EOF\n2: -> FLOCK  ADVISORY  WRITE 5151 ${id} 0 EOF\n`);
    expect(await lockHolderOf(dir, locks)).to.equal(4242);
    writeFileSync(locks, `1: FLOCK  ADVISORY  WRITE 0 ${id} 0 EOF\n`);
    expect(await lockHolderOf(dir, locks), 'a holder in another pid namespace').to.equal(0);
    writeFileSync(locks, `1: POSIX  ADVISORY  WRITE 17 ${other} 0 EOF\n1: -> FLOCK  ADVISORY  WRITE 5151 ${id} 0 EOF\n`);
    expect(await lockHolderOf(dir, locks)).to.equal(undefined);
    expect(await lockHolderOf(join(dir, 'nowhere'), locks), 'no flock.lock').to.equal(undefined);
    expect(await lockHolderOf(dir, join(dir, 'no-proc-locks')), 'no /proc/locks').to.equal(undefined);
  });

  it('sees every lock only in the host\'s PID namespace (the kernel\'s constant inode of it), not in a container\'s', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'db-lock-ns-'));
    symlinkSync('pid:[4026531836]', join(dir, 'host'));
    symlinkSync('pid:[4026532178]', join(dir, 'container'));
    expect(await seesEveryLock(join(dir, 'host'))).to.equal(true);
    expect(await seesEveryLock(join(dir, 'container'))).to.equal(false);
    expect(await seesEveryLock(join(dir, 'none')), 'cannot tell: not every lock').to.equal(false);
  });
});
