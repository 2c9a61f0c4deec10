/**
 * The note a restore from a plan leaves in the data directory once every file checked out. The
 * plugin's init container stays in the restored pod's spec, and Kubernetes runs init containers
 * again whenever the pod's sandbox is recreated (a node reboot): finding the note of its own plan,
 * it leaves the data, by then the database's own, as it is, and needs neither the bucket nor the
 * plan, whose links may have expired long ago.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDir, writeFileAtomic } from './file-writer.js';

export const RESTORED_MARKER = '.victoria-restored.json';

export interface RestoredRecord {
  /** The SHA-256 of the plan that was restored: it names the restore (its UID) and the pod. */
  planSha256: string;
  restore: string;
  backup: string;
  completedAt: string;
}

/** The note in `dataDir`, or undefined when there is none (or it is not ours). */
export async function readRestoredMarker(dataDir: string): Promise<RestoredRecord | undefined> {
  let text: string;
  try {
    text = await readFile(join(dataDir, RESTORED_MARKER), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const r = JSON.parse(text) as Partial<RestoredRecord>;
    return typeof r.planSha256 === 'string' && typeof r.restore === 'string' && typeof r.backup === 'string' && typeof r.completedAt === 'string'
      ? (r as RestoredRecord)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the note durably (a temporary file, fsynced, renamed into place). */
export async function writeRestoredMarker(dataDir: string, record: RestoredRecord): Promise<void> {
  const path = join(dataDir, RESTORED_MARKER);
  await writeFileAtomic(path, `${path}.tmp`, `${JSON.stringify(record)}\n`);
  await syncDir(dataDir);
}
