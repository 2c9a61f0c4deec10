/**
 * BackupItemActionV2 on Victoria pods. Registered with its real selector so that Velero loads and
 * calls it; the upload of snapshot data arrives with the backup issue. Until then the pod passes
 * through unchanged and the call is visible at debug level.
 */
import type { BackupItemActionV2 } from '../velero/types.js';
import { BACKUP_ACTION, VICTORIA_PODS } from './names.js';

export function podBackupAction(): BackupItemActionV2 {
  return {
    kind: 'BackupItemActionV2',
    name: BACKUP_ACTION,
    appliesTo: () => VICTORIA_PODS,
    async execute(_input, ctx) {
      ctx.log.debug('pod backup: data capture not implemented yet; pod passed through unchanged');
      return undefined;
    },
    // This action never starts asynchronous operations, so there is never one to report on.
    async progress(operationID) {
      return { completed: true, err: `no asynchronous operation "${operationID}": ${BACKUP_ACTION} uploads synchronously` };
    },
    async cancel() {},
  };
}
