/**
 * Whether a running VictoriaMetrics or VictoriaLogs holds a data directory. Both take an exclusive
 * flock on `<storageDataPath>/flock.lock` for as long as they run (vmrestore takes the same lock,
 * and so refuses a running database's directory). Node cannot try a flock itself, but Linux lists
 * every file lock in /proc/locks, by device and inode, system-wide (also from inside a container).
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

export const FLOCK_FILE = 'flock.lock';

/** The pid holding a lock on `dir`'s flock.lock (0 when it runs in another pid namespace); undefined when none does or it cannot be told. */
export async function lockHolderOf(dir: string, procLocks = '/proc/locks'): Promise<number | undefined> {
  const file = await stat(join(dir, FLOCK_FILE)).catch(() => undefined);
  if (!file) return undefined;
  const locks = await readFile(procLocks, 'utf8').catch(() => undefined);
  if (locks === undefined) return undefined;
  // glibc's dev_t encoding; /proc/locks prints MAJOR:MINOR in hex and the inode in decimal.
  const dev = BigInt(file.dev);
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  for (const line of locks.split('\n')) {
    // "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1835 0 EOF"; a waiter's line has "->" after the number.
    const fields = line.trim().split(/\s+/);
    const at = fields.findIndex((f) => /^[0-9a-f]+:[0-9a-f]+:\d+$/i.test(f));
    if (at < 1 || fields.includes('->')) continue;
    const [maj, min, inode] = fields[at]!.split(':');
    if (parseInt(maj!, 16) === major && parseInt(min!, 16) === minor && Number(inode) === file.ino) return Number(fields[at - 1]);
  }
  return undefined;
}
