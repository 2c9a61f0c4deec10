/**
 * What in the cluster keeps a restored pod from getting its data. Velero creates no object that
 * exists already (and under `--existing-resource-policy=update` cannot patch a pod's init
 * containers): a pod of the same name keeps running on its current data. A ReplicaSet that exists
 * already adopts the restored pod as a replica too many, and may delete it while it downloads.
 */
import type { KubeClient } from '../kube/client.js';
import { KubeError } from '../kube/errors.js';

const RUNBOOK = 'delete the workload first (docs/velero-restore.md, "Single-workload restore")';

export interface RestoreConflict {
  /** The pod itself exists: Velero will not create it, so there is nothing to inject. */
  podExists: boolean;
  message: string;
}

/** True when the object exists; false when it does not, or when the API does not say (a check, never a failure). */
async function exists(get: () => Promise<unknown>): Promise<boolean> {
  try {
    await get();
    return true;
  } catch (err) {
    if (!(err instanceof KubeError)) throw err;
    return false;
  }
}

export async function restoreConflict(kube: KubeClient, namespace: string, pod: string, replicaSet: string | undefined): Promise<RestoreConflict | undefined> {
  if (await exists(() => kube.getPod(namespace, pod))) {
    return {
      podExists: true,
      message: `pod ${namespace}/${pod} exists already: Velero does not replace existing objects, so it keeps running on its current data and nothing is restored into it; to restore its data, ${RUNBOOK}`,
    };
  }
  if (replicaSet && (await exists(() => kube.getReplicaSet(namespace, replicaSet)))) {
    return {
      podExists: false,
      message: `ReplicaSet ${namespace}/${replicaSet} exists already: it adopts the restored pod as a replica too many and may delete it before its data is restored; ${RUNBOOK}`,
    };
  }
  return undefined;
}
