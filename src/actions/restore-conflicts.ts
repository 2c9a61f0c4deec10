/**
 * What in the cluster keeps a restored pod from getting its data. Velero creates no object that
 * exists already (and under `--existing-resource-policy=update` cannot patch a pod's init
 * containers): a pod of the same name keeps running on its current data. Velero also drops the
 * pod's ownerReferences, so a controller that exists already adopts the restored pod by its
 * labels: a ReplicaSet as a replica too many, which it may delete while the data downloads; a
 * StatefulSet scaled below the pod's ordinal deletes it, and one that is not creates the pod
 * itself, without the restore's init container; a DaemonSet keeps one pod per node, and may
 * create its own there first. A Deployment whose template changed since the
 * backup has another ReplicaSet, which does not adopt the restored pod (its pod-template-hash
 * differs): the pod then runs beside the Deployment's own, a second database on its data.
 */
import type { KubeClient } from '../kube/client.js';
import { KubeError } from '../kube/errors.js';
import type { KubeObject } from '../velero/types.js';
import { controllerOf } from './workload.js';

export const RUNBOOK = 'delete the workload first (docs/velero-restore.md, "Single-workload restore")';

export interface RestoreConflicts {
  /** The pod itself exists: Velero will not create it, so there is nothing to inject. */
  podExists: boolean;
  /** One warning per conflict found, and per check the API server did not answer. */
  warnings: string[];
  /**
   * A controller of the pod's workload that exists already (`Kind namespace/name`): its own pod may
   * run a database on the same hostPath, which the restore init container cannot see (db-lock.ts).
   */
  liveWorkload?: string;
  /**
   * A controller of the pod's workload whose lookup the API server did not answer (`Kind
   * namespace/name (reason)`): it may exist, which restoreReplace must not assume it does not.
   */
  uncheckedWorkload?: string;
}

/** The controllers that adopt a restored pod by its labels, and what each then does to it. */
const CONTROLLERS: Record<string, { get: (kube: KubeClient, namespace: string, name: string) => Promise<unknown>; adopts: string }> = {
  ReplicaSet: {
    get: (kube, namespace, name) => kube.getReplicaSet(namespace, name),
    adopts: 'it adopts the restored pod as a replica too many and may delete it before its data is restored',
  },
  StatefulSet: {
    get: (kube, namespace, name) => kube.getStatefulSet(namespace, name),
    adopts: "it adopts the restored pod: scaled below the pod's ordinal it deletes it before its data is restored, otherwise it may create the pod itself first, without the restore",
  },
  DaemonSet: {
    get: (kube, namespace, name) => kube.getDaemonSet(namespace, name),
    adopts: "it adopts the restored pod: with a pod of its own on that node already it deletes one of the two, otherwise it may create its own pod there first, without the restore",
  },
};

type Lookup = { exists: boolean } | { unknown: string };

/** Whether the object exists. Only NotFound means absent; any other API error leaves it unknown. */
async function lookup(get: () => Promise<unknown>): Promise<Lookup> {
  try {
    await get();
    return { exists: true };
  } catch (err) {
    if (!(err instanceof KubeError)) throw err;
    return err.code === 'NotFound' ? { exists: false } : { unknown: err.message };
  }
}

/**
 * The conflicts for restoring `fromBackup` (the pod as backed up, with its ownerReferences) as
 * `namespace/pod`. A check the API server does not answer is a warning, never a failure: the
 * restore itself does not depend on it.
 */
export async function restoreConflicts(kube: KubeClient, namespace: string, pod: string, fromBackup: KubeObject): Promise<RestoreConflicts> {
  const warnings: string[] = [];
  const unchecked = (what: string, reason: string, consequence: string): void => {
    warnings.push(`could not check whether ${what} exists already (${reason}); if it does, ${consequence}`);
  };
  const self = await lookup(() => kube.getPod(namespace, pod));
  if ('exists' in self && self.exists) {
    return {
      podExists: true,
      warnings: [`pod ${namespace}/${pod} exists already: Velero does not replace existing objects, so it keeps running on its current data and nothing is restored into it; to restore its data, ${RUNBOOK}`],
    };
  }
  if ('unknown' in self) {
    unchecked(`pod ${namespace}/${pod}`, self.unknown, `Velero keeps it running on its current data and nothing is restored into it; to restore its data, ${RUNBOOK}`);
  }

  let liveWorkload: string | undefined;
  let uncheckedWorkload: string | undefined;
  /** Whether the object exists (undefined: unknown), with a warning for either case. */
  const conflict = async (id: string, get: () => Promise<unknown>, consequence: string): Promise<boolean | undefined> => {
    const found = await lookup(get);
    if ('unknown' in found) {
      unchecked(id, found.unknown, `${consequence}; ${RUNBOOK}`);
      uncheckedWorkload ??= `${id} (${found.unknown})`;
    } else if (found.exists) {
      warnings.push(`${id} exists already: ${consequence}; ${RUNBOOK}`);
      liveWorkload ??= id;
    }
    return 'exists' in found ? found.exists : undefined;
  };

  const owner = controllerOf(fromBackup.metadata);
  const controller = owner?.name ? CONTROLLERS[owner.kind ?? ''] : undefined;
  if (owner?.name && controller) {
    const exists = await conflict(`${owner.kind} ${namespace}/${owner.name}`, () => controller.get(kube, namespace, owner.name!), controller.adopts);
    // The backed-up pod's ReplicaSet is gone, but its Deployment may not be: rolled over to a new
    // template, its current ReplicaSet selects another pod-template-hash and leaves the restored
    // pod alone, which then runs beside the Deployment's own pod as an unmanaged second database.
    const deployment = owner.kind === 'ReplicaSet' && exists === false ? deploymentOf(owner.name, fromBackup) : undefined;
    if (deployment) {
      await conflict(
        `Deployment ${namespace}/${deployment}`,
        () => kube.getDeployment(namespace, deployment),
        `the restored pod runs beside the Deployment's own pod (its ReplicaSet ${owner.name} of the backup is gone, and the current one does not adopt it): two databases, one of them unmanaged, on the same hostPath if they share a node`,
      );
    }
  }
  return { podExists: false, warnings, ...(liveWorkload ? { liveWorkload } : {}), ...(uncheckedWorkload ? { uncheckedWorkload } : {}) };
}

/**
 * The Deployment a pod's ReplicaSet belongs to: `<deployment>-<pod-template-hash>`, the hash being
 * the pod's own label. A ReplicaSet of its own (no such label, or another name) has none.
 */
function deploymentOf(replicaSet: string, pod: KubeObject): string | undefined {
  const hash = (pod.metadata as { labels?: Record<string, string> } | undefined)?.labels?.['pod-template-hash'];
  return hash && replicaSet.endsWith(`-${hash}`) && replicaSet.length > hash.length + 1 ? replicaSet.slice(0, -(hash.length + 1)) : undefined;
}
