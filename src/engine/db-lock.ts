/**
 * Whether a running VictoriaMetrics or VictoriaLogs holds a data directory. Both take an exclusive
 * flock on `<storageDataPath>/flock.lock` for as long as they run (vmrestore takes the same lock,
 * and so refuses a running database's directory). Node cannot try a flock itself, but Linux lists
 * file locks in /proc/locks, by device and inode: every lock on the system to a process in the
 * host's PID namespace, but to one in a namespace of its own (a container) only the locks of
 * processes it can see, so there a database in another container does not show (seesEveryLock).
 */
import { readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';

export const FLOCK_FILE = 'flock.lock';

/**
 * The host's (initial) PID namespace, as /proc/self/ns/pid names it: its inode number is a constant
 * of the kernel (PROC_PID_INIT_INO). A container's /proc cannot tell otherwise: it is mounted for the
 * container's namespace, whose processes it numbers from 1.
 */
const HOST_PID_NAMESPACE = `pid:[${0xeffffffc}]`;

/**
 * Whether /proc/locks shows this process every lock on the system: only in the host's PID
 * namespace. In any other the kernel leaves out the locks of processes the namespace cannot see.
 */
export async function seesEveryLock(nsLink = '/proc/self/ns/pid'): Promise<boolean> {
  return (await readlink(nsLink).catch(() => undefined)) === HOST_PID_NAMESPACE;
}

/** The pid holding a lock on `dir`'s flock.lock, as this process sees it (seesEveryLock); undefined when none does or it cannot be told. */
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
