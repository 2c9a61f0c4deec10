/**
 * BackupItemActionV2 on labelled Victoria Deployments, StatefulSets and DaemonSets: no silent skip
 * (docs/velero-backup.md, "How a backup flows", step 4).
 * It fails the item, or its asynchronous operation, of a workload whose pods' data is not in the
 * backup (check-workload.ts, loaded only when Execute or Progress runs: see pod-backup.ts).
 */
import type { BackupItemActionV2 } from '../velero/types.js';
import { LABELLED_PODS, PLUGIN_DOMAIN } from './names.js';

const WORKLOAD_CHECK_ACTION = `${PLUGIN_DOMAIN}/workload-check`;

export function workloadCheckAction(): BackupItemActionV2 {
  return {
    kind: 'BackupItemActionV2',
    name: WORKLOAD_CHECK_ACTION,
    // Any value of the label, as for pods (names.ts LABELLED_PODS): a mistyped one is reported.
    appliesTo: () => ({ includedResources: ['deployments.apps', 'statefulsets.apps', 'daemonsets.apps'], selector: LABELLED_PODS.selector }),
    execute: async (input, ctx) => (await import('./check-workload.js')).executeWorkloadCheck(input, ctx),
    // Execute starts one operation per workload, which looks for the pods' complete markers once
    // every item of the backup is done (check-workload.ts); it does nothing that could be cancelled.
    progress: async (operationID, backup, ctx) => (await import('./check-workload.js')).workloadCheckProgress(operationID, backup, ctx),
    async cancel() {},
  };
}
