/**
 * DeleteItemAction on Victoria pods: when Velero deletes a backup (by hand or when its TTL ends),
 * remove that backup's Victoria data, found through the record the backup action put on the pod
 * (delete-pod-data.ts, loaded only when Execute runs: see pod-backup.ts).
 */
import type { DeleteItemAction } from '../velero/types.js';
import { DELETE_ACTION, VICTORIA_PODS } from './names.js';

export function podDeleteAction(): DeleteItemAction {
  return {
    kind: 'DeleteItemAction',
    name: DELETE_ACTION,
    appliesTo: () => VICTORIA_PODS,
    execute: async (input, ctx) => (await import('./delete-pod-data.js')).executePodDelete(input, ctx),
  };
}
