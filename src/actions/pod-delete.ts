/**
 * DeleteItemAction on Victoria pods. Registered with its real selector; removing a deleted
 * backup's data from the bucket arrives with the backup issue. Until then it only logs.
 */
import type { DeleteItemAction } from '../velero/types.js';
import { DELETE_ACTION, VICTORIA_PODS } from './names.js';

export function podDeleteAction(): DeleteItemAction {
  return {
    kind: 'DeleteItemAction',
    name: DELETE_ACTION,
    appliesTo: () => VICTORIA_PODS,
    async execute(_input, ctx) {
      ctx.log.debug('pod delete: bucket clean-up not implemented yet; nothing removed');
    },
  };
}
