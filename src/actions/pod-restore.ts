/**
 * RestoreItemActionV2 on Victoria pods (docs/velero-restore.md, "How a restore flows"); the work is
 * in restore-pod.ts. As for the backup action (pod-backup.ts), the Kubernetes and S3 clients are
 * loaded only when Execute runs: Velero starts a plugin process for every restore and most of them
 * restore no Victoria pod.
 */
import type { RestoreItemActionV2 } from '../velero/types.js';
import { RESTORE_ACTION, VICTORIA_PODS } from './names.js';

export function podRestoreAction(): RestoreItemActionV2 {
  return {
    kind: 'RestoreItemActionV2',
    name: RESTORE_ACTION,
    appliesTo: () => VICTORIA_PODS,
    execute: async (input, ctx) => (await import('./restore-pod.js')).executePodRestore(input, ctx),
    // The init container does the work inside the restored pod: its operation follows that (restore-operation.ts).
    progress: async (operationID, restore, ctx) => (await import('./restore-operation.js')).restoreOperationProgress(operationID, restore, ctx),
    cancel: async (operationID, restore, ctx) => (await import('./restore-operation.js')).cancelRestoreOperation(operationID, restore, ctx),
    async areAdditionalItemsReady() {
      return true;
    },
  };
}
