/**
 * RestoreItemActionV2 on Victoria pods. Registered with its real selector; injecting the restore
 * init container arrives with the restore issue. Until then the pod passes through unchanged.
 */
import type { RestoreItemActionV2 } from '../velero/types.js';
import { RESTORE_ACTION, VICTORIA_PODS } from './names.js';

export function podRestoreAction(): RestoreItemActionV2 {
  return {
    kind: 'RestoreItemActionV2',
    name: RESTORE_ACTION,
    appliesTo: () => VICTORIA_PODS,
    async execute(_input, ctx) {
      ctx.log.debug('pod restore: data restore not implemented yet; pod passed through unchanged');
      return undefined;
    },
    async progress(operationID) {
      return { completed: true, err: `no asynchronous operation "${operationID}": ${RESTORE_ACTION} works synchronously` };
    },
    async cancel() {},
    async areAdditionalItemsReady() {
      return true;
    },
  };
}
