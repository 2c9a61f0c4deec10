/**
 * BackupItemActionV2 on labelled Victoria Deployments and StatefulSets: no silent skip (design.md).
 * It fails the item of a workload whose pods' data is not in the backup (check-workload.ts, loaded
 * only when Execute runs: see pod-backup.ts).
 */
import type { BackupItemActionV2 } from '../velero/types.js';
import { KIND_LABEL, PLUGIN_DOMAIN } from './names.js';

export const WORKLOAD_CHECK_ACTION = `${PLUGIN_DOMAIN}/workload-check`;

export function workloadCheckAction(): BackupItemActionV2 {
  return {
    kind: 'BackupItemActionV2',
    name: WORKLOAD_CHECK_ACTION,
    appliesTo: () => ({ includedResources: ['deployments.apps', 'statefulsets.apps'], selector: `${KIND_LABEL} in (metrics,logs)` }),
    execute: async (input, ctx) => (await import('./check-workload.js')).executeWorkloadCheck(input, ctx),
    async progress(operationID) {
      return { completed: true, err: `no asynchronous operation "${operationID}": ${WORKLOAD_CHECK_ACTION} starts none` };
    },
    async cancel() {},
  };
}
