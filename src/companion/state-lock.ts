/**
 * One writer of the record at a time. `hook pre` reads the record, makes snapshots and writes the
 * new record; two at once (a second Velero, or a hook run by hand during a Schedule's backup) would
 * each record only their own set, and the set written first would never be deleted by anyone. So
 * `hook pre`, `hook post` and `serve`'s expiry take `<state-dir>/lock` (created exclusively,
 * naming its holder) around their read-modify-write; `files`, `tar` and `counts` only read the
 * record, which is replaced atomically, and take no lock.
 *
 * A lock whose holder is gone (a hook killed with SIGKILL) is taken over: the holder is named by
 * its PID and its start time, so a reused PID does not keep a dead hook's lock alive. Hooks run
 * with exec in the companion container, so they all share its PID namespace. Two that find the
 * same dead lock must not both remove "it": the second would remove the lock the first has just
 * taken. So a dead lock is removed only under `<state-dir>/lock.takeover` (created exclusively,
 * held for a few file operations), and only if it is still the very file judged dead.
 */
import { mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CompanionError, usageError } from './errors.js';
import { STATE_DIR_HINT } from './state.js';

const LOCK_FILE = 'lock';
const TAKEOVER_FILE = 'lock.takeover';
const POLL_MS = 100;
const EMPTY_LOCK_GRACE_MS = 5000;

export const lockPath = (stateDir: string): string => join(stateDir, LOCK_FILE);

/** The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or undefined. */
export async function processStartTime(pid: number): Promise<string | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/**
 * Whether the holder a lock file names still runs. An empty file is being written right now,
 * unless it is older than a few seconds (its writer died between creating and writing it).
 */
async function holderAlive(file: string, text: string): Promise<boolean> {
  const [pid, started] = text.trim().split(' ');
  if (!pid || !/^\d+$/.test(pid)) {
    const mtime = await stat(file).then((s) => s.mtimeMs, () => 0);
    return Date.now() - mtime < EMPTY_LOCK_GRACE_MS;
  }
  const now = await processStartTime(Number(pid));
  return now !== undefined && now === started;
}

/**
 * Takes the state dir's lock and returns its release, waiting up to `waitMs` for another holder;
 * undefined if it is still held then and `waitMs` is 0 (serve skips a tick while a hook works),
 * else an error naming the holder.
 */
export async function acquireStateLock(stateDir: string, what: string, waitMs: number): Promise<(() => Promise<void>) | undefined> {
  const file = lockPath(stateDir);
  await mkdir(stateDir, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
    throw usageError(`cannot create ${stateDir} (${err.code}): ${STATE_DIR_HINT}`);
  });
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const handle = await open(file, 'wx', 0o600);
      try {
        await handle.writeFile(`${process.pid} ${(await processStartTime(process.pid)) ?? '?'} ${what}\n`);
      } finally {
        await handle.close();
      }
      return () => unlink(file).catch(() => undefined);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new CompanionError(`cannot create ${file}: ${(err as Error).message}: ${STATE_DIR_HINT}`);
      }
    }
    const judged = await stat(file).catch(() => undefined);
    if (!judged) continue; // released meanwhile
    const holder = await readFile(file, 'utf8').catch(() => '');
    if (!(await holderAlive(file, holder))) {
      await removeDeadLock(stateDir, { ino: judged.ino, mtimeMs: judged.mtimeMs, holder });
      continue;
    }
    if (waitMs === 0) return undefined;
    if (Date.now() >= deadline) {
      const [pid, , ...rest] = holder.trim().split(' ');
      throw new CompanionError(
        `another companion command (${rest.join(' ') || 'unknown'}, pid ${pid ?? 'unknown'}) has held ${file} for more than ${Math.round(waitMs / 1000)} s: ` +
          'two backups of this pod at once? Wait for it; if no companion command runs any more, remove the file',
      );
    }
    await sleep(POLL_MS);
  }
}

/**
 * Removes the lock judged dead, if it is still that file (same inode, mtime and holder: another
 * process may have removed it and taken a new lock since), under the takeover guard. Finding the
 * guard taken, it returns: the caller tries again. A guard left by a process killed inside it is
 * older than a few seconds and is removed.
 */
async function removeDeadLock(stateDir: string, judged: { ino: number; mtimeMs: number; holder: string }): Promise<void> {
  const file = lockPath(stateDir);
  const guard = join(stateDir, TAKEOVER_FILE);
  try {
    await (await open(guard, 'wx', 0o600)).close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new CompanionError(`cannot create ${guard}: ${(err as Error).message}: ${STATE_DIR_HINT}`);
    const age = await stat(guard).then((s) => Date.now() - s.mtimeMs, () => 0);
    if (age > EMPTY_LOCK_GRACE_MS) await unlink(guard).catch(() => undefined);
    else await sleep(5);
    return;
  }
  try {
    const now = await stat(file).catch(() => undefined);
    const holder = now ? await readFile(file, 'utf8').catch(() => undefined) : undefined;
    if (now && now.ino === judged.ino && now.mtimeMs === judged.mtimeMs && holder === judged.holder) await unlink(file).catch(() => undefined);
  } finally {
    await unlink(guard).catch(() => undefined);
  }
}

/** Runs `fn` holding the state dir's lock (see acquireStateLock). */
export async function withStateLock<T>(stateDir: string, what: string, waitMs: number, fn: () => Promise<T>): Promise<T> {
  const release = await acquireStateLock(stateDir, what, Math.max(waitMs, 1));
  try {
    return await fn();
  } finally {
    await release?.();
  }
}
