import type { ItemAction } from '../velero/types.js';
import { podBackupAction } from './pod-backup.js';
import { podDeleteAction } from './pod-delete.js';
import { podRestoreAction } from './pod-restore.js';
import { workloadCheckAction } from './workload-check.js';
import { workloadRestoreAction } from './workload-restore.js';

export { abortOpenUploads, removeStaleCredentials } from './open-locations.js';

/** Every action this binary registers with Velero. */
export function allActions(): ItemAction[] {
  return [podBackupAction(), workloadCheckAction(), podRestoreAction(), workloadRestoreAction(), podDeleteAction()];
}
