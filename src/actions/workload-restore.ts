/**
 * RestoreItemActionV2 on labelled Victoria Deployments, ReplicaSets, StatefulSets and DaemonSets: in a drill,
 * their pod templates get the same remapped data hostPath as the restored pods
 * (drill-template.ts, loaded only when Execute runs: see pod-backup.ts). Without it, a drill
 * pod that dies is recreated by its controller from the backed-up template, on the production
 * data directory, beside the production database.
 */
import type { RestoreItemActionV2 } from '../velero/types.js';
import { KIND_LABEL, PLUGIN_DOMAIN } from './names.js';

const WORKLOAD_RESTORE_ACTION = `${PLUGIN_DOMAIN}/workload-restore`;

export function workloadRestoreAction(): RestoreItemActionV2 {
  return {
    kind: 'RestoreItemActionV2',
    name: WORKLOAD_RESTORE_ACTION,
    // Any value of the label, as drills restore them (`velero-plugin-victoria.io/kind` exists): one
    // with a mistyped value would otherwise come back unchanged, on its production hostPath.
    appliesTo: () => ({ includedResources: ['deployments.apps', 'replicasets.apps', 'statefulsets.apps', 'daemonsets.apps'], selector: KIND_LABEL }),
    execute: async (input, ctx) => (await import('./drill-template.js')).executeDrillTemplate(input, ctx),
    async progress(operationID) {
      return { completed: true, err: `no asynchronous operation "${operationID}": ${WORKLOAD_RESTORE_ACTION} starts none` };
    },
    async cancel() {},
    async areAdditionalItemsReady() {
      return true;
    },
  };
}
