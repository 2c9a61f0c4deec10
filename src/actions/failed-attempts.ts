/**
 * Failed pod backups are taken over, then removed. A pod backup that fails keeps the files it
 * finished in its incomplete folder beside the workload's backups (the engine's onFailure
 * 'keep-journaled'), and the next backup of the workload copies them server-side (resumeFrom)
 * instead of uploading them again: a first full backup of a large database that fails late, or
 * whose Velero was restarted, does not start over. Once that backup is complete, it removes the
 * folders of the failed attempts: no restore reads them, and no delete action would ever remove
 * them (a failed item is not in Velero's backup, so Velero never calls one for it).
 *
 * A folder is removed only once Velero is done with its backup, as the backup's
 * `backups/<name>/velero-backup.json` in the location shows (Velero writes it after the backup's
 * items): from then on nothing writes into the folder. The bucket is the judge, as for prune
 * (leftovers.ts). Until then the folder stays; a backup Velero never finished (its server died
 * with it) has no such file, and prune removes its folder once Velero has deleted the backup.
 */
import { deleteBackup } from '../engine/delete.js';
import { inProgressMarker, type FailedAttempt } from '../engine/catalog.js';
import { COMPLETE_KEY } from '../engine/manifest.js';
import type { ObjectStore } from '../store/types.js';
import { VELERO_BACKUP_FILE } from './leftovers.js';

export interface AttemptRemoval {
  removed: Array<{ name: string; objects: number; bytes: number }>;
  /** Attempts whose Velero backup is not finished (or never was): left for a later backup, or prune. */
  unfinished: string[];
  /** Attempts that could not be checked or removed, with the store's error: left, and said. */
  failed: Array<{ name: string; error: string }>;
}

/**
 * Removes from `store` (the workload's folder) the failed attempts whose Velero backup is finished;
 * `veleroBackups` is the location's `backups/`. The attempts were found before this backup began,
 * hours ago perhaps: a folder that has a complete marker now, or another run's in-progress marker
 * (another Velero sharing the location), is no longer one of them and is left alone.
 */
export async function removeFinishedAttempts(store: ObjectStore, veleroBackups: ObjectStore, attempts: FailedAttempt[]): Promise<AttemptRemoval> {
  const result: AttemptRemoval = { removed: [], unfinished: [], failed: [] };
  for (const { name, run } of attempts) {
    try {
      if (!(await veleroBackups.head(`${name}/${VELERO_BACKUP_FILE}`))) {
        result.unfinished.push(name);
        continue;
      }
      if ((await store.head(`${name}/${COMPLETE_KEY}`)) || (await inProgressMarker(store, name))?.run !== run) continue;
      result.removed.push({ name, ...(await deleteBackup(store, name)) });
    } catch (err) {
      result.failed.push({ name, error: err instanceof Error ? err.message : String(err) });
    }
  }
  return result;
}
