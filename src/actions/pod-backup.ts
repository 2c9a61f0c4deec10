/**
 * BackupItemActionV2 on Victoria pods (docs/velero-backup.md, "How a backup flows", step 2); the
 * work is in backup-pod.ts. Velero starts a plugin process for every backup, restore, deletion and
 * every 10 s operation poll, and most of those never back up a pod: the Kubernetes and S3 clients
 * are loaded only when Execute runs, which keeps start-up and idle memory small.
 */
import type { BackupItemActionV2 } from '../velero/types.js';
import { BACKUP_ACTION, LABELLED_PODS } from './names.js';

export function podBackupAction(): BackupItemActionV2 {
  return {
    kind: 'BackupItemActionV2',
    name: BACKUP_ACTION,
    appliesTo: () => LABELLED_PODS,
    execute: async (input, ctx) => (await import('./backup-pod.js')).executePodBackup(input, ctx),
    // This action never starts asynchronous operations, so there is never one to report on.
    async progress(operationID) {
      return { completed: true, err: `no asynchronous operation "${operationID}": ${BACKUP_ACTION} uploads synchronously` };
    },
    async cancel() {},
  };
}
