/**
 * What the storage locations opened in this process leave to clean up when it exits: the copies
 * of their credential Secrets, and their multipart uploads under way. Apart from storage.ts, which
 * opens the locations: every plugin process imports this at start, and must not load the S3 SDK
 * for it (Velero starts a plugin process for every backup, restore, deletion and operation poll).
 */
import { rmSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Store } from '../store/s3.js';

/**
 * The credentials files of the locations open now. close() removes each; a process that exits with
 * a location open (SIGTERM from Velero, a crash) removes them here, so that no copy of a Secret
 * outlives the process.
 */
const credentialDirs = new Set<string>();
process.once('exit', () => {
  for (const dir of credentialDirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * Where a location's credentials file goes: the owner's pid in the name lets a later process
 * remove what one killed with SIGKILL left (removeStaleCredentials).
 */
const CREDENTIALS_DIR = 'velero-plugin-victoria-credentials-';

/** A new private directory for a location's credentials file, removed at the latest when the process exits. */
export async function newCredentialsDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `${CREDENTIALS_DIR}${process.pid}-`));
  credentialDirs.add(dir);
  return dir;
}

/** A credentials directory its location removed on close. */
export function forgetCredentialsDir(dir: string): void {
  credentialDirs.delete(dir);
}

/**
 * Removes the credentials directories of plugin processes that are gone. Velero kills a plugin
 * that does not exit within 2 s of Shutdown, and the kernel one that runs out of memory: their
 * copies of the Secret would stay in the Velero container's /tmp until it restarts. A directory
 * whose pid is alive (or was reused) is left alone: a copy another plugin process still reads.
 */
export async function removeStaleCredentials(dir = tmpdir()): Promise<string[]> {
  const stale = (await readdir(dir)).filter((name) => {
    const pid = name.startsWith(CREDENTIALS_DIR) ? Number(/^(\d+)-/.exec(name.slice(CREDENTIALS_DIR.length))?.[1]) : NaN;
    return Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && !isAlive(pid);
  });
  await Promise.all(stale.map((name) => rm(join(dir, name), { recursive: true, force: true })));
  return stale;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive, another user's.
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** The stores of the locations open now (abortOpenUploads). */
export const openStores = new Set<S3Store>();

/**
 * Aborts the multipart uploads of every location open now, for a plugin process about to exit
 * (Velero's Shutdown, SIGTERM) with a backup under way: their parts would otherwise stay in the
 * bucket, billed and unlisted, until a lifecycle rule removes them (docs/storage.md).
 */
export async function abortOpenUploads(): Promise<number> {
  const counts = await Promise.all([...openStores].map((store) => store.abortOpenUploads()));
  return counts.reduce((a, b) => a + b, 0);
}
