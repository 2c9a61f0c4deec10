/**
 * Which workload a Victoria pod belongs to: its data folder in the bucket is named after it
 * (record.ts). A Deployment's pods are found through their ReplicaSet; a StatefulSet's pods (and
 * bare pods) keep their own names, which are stable and each have their own data. A DaemonSet's
 * pods get new names when they are recreated, but each keeps its node and that node's hostPath
 * data, so their folder is `<daemonset>@<node>`: '@' occurs in no Kubernetes name, so such a
 * folder cannot be another workload's.
 */
import type { KubeClient } from '../kube/client.js';
import { KubeError } from '../kube/errors.js';
import type { KubeObject } from '../velero/types.js';
import { KIND_LABEL } from './names.js';

export interface Workload {
  /** `Deployment/<name>`, `ReplicaSet/<name>`, `StatefulSet/<name>`, `DaemonSet/<name>` or `Pod/<name>`, for messages and the record. */
  id: string;
  /** Folder name under the namespace. */
  folder: string;
}

interface OwnerReference {
  kind?: string;
  name?: string;
  controller?: boolean;
}

/**
 * The pod's (or ReplicaSet's) controller: the owner marked as such, else the first owner. Takes
 * any metadata, typed (the API client's) or as Velero sent it.
 */
export function controllerOf(meta: object | undefined): OwnerReference | undefined {
  const owners = (meta as { ownerReferences?: OwnerReference[] } | undefined)?.ownerReferences;
  return owners?.find((o) => o.controller) ?? owners?.[0];
}

export async function workloadOf(kube: KubeClient, pod: KubeObject): Promise<Workload> {
  const namespace = pod.metadata?.namespace ?? '';
  const name = pod.metadata?.name ?? '';
  const owner = controllerOf(pod.metadata);
  if (owner?.kind === 'ReplicaSet' && owner.name) {
    // The ReplicaSet may be gone (rolled over) by the time of the backup: the hash suffix is then
    // the only link left, and Deployment ReplicaSets are named `<deployment>-<hash>`.
    const rs = await kube.getReplicaSet(namespace, owner.name).catch((err: unknown) => {
      // Only a ReplicaSet that is gone may be guessed from its name: one the API server would not
      // show (RBAC, a timeout) might be a bare ReplicaSet, whose data belongs in a folder of its own.
      if (err instanceof KubeError && err.code === 'NotFound') return undefined;
      throw new Error(`cannot read ReplicaSet ${namespace}/${owner.name}, the owner of pod ${namespace}/${name}, to find its workload: ${(err as Error).message}`, { cause: err });
    });
    const deployment = rs ? controllerOf(rs.metadata)?.name : owner.name.replace(/-[a-z0-9]+$/, '');
    if (deployment && (!rs || controllerOf(rs.metadata)?.kind === 'Deployment')) return { id: `Deployment/${deployment}`, folder: deployment };
    return { id: `ReplicaSet/${owner.name}`, folder: owner.name };
  }
  if (owner?.kind === 'StatefulSet' && owner.name) return { id: `StatefulSet/${owner.name}`, folder: name };
  if (owner?.kind === 'DaemonSet' && owner.name) {
    // A pod not yet scheduled has no node, and no data to back up either (the workload check
    // counts it as not running): its own name keeps it apart meanwhile.
    const node = (pod as { spec?: { nodeName?: string } }).spec?.nodeName;
    return { id: `DaemonSet/${owner.name}`, folder: node ? `${owner.name}@${node}` : name };
  }
  return { id: `Pod/${name}`, folder: name };
}

/** A pod that runs and is not being deleted: one whose data a backup of its workload must hold. */
export function isRunning(pod: { status?: { phase?: string }; metadata?: object }): boolean {
  return pod.status?.phase === 'Running' && !(pod.metadata as { deletionTimestamp?: unknown } | undefined)?.deletionTimestamp;
}

/** Workloads whose pods all back up into one folder (workloadOf). */
const SHARED_FOLDER = /^(Deployment|ReplicaSet)\//;

/**
 * A Deployment's (or bare ReplicaSet's) pods have no stable names, so all of them back up into the
 * workload's one folder. With one running pod that is right; with several, each on its own node's
 * hostPath, each pod's backup would overwrite the others' data and delete their files as stale. So
 * such a backup fails, naming the pods and the fix; `running` are the names of the workload's
 * running pods that are not being deleted.
 */
export function sharedFolderProblem(workload: Workload, running: readonly string[]): string | undefined {
  if (running.length <= 1 || !SHARED_FOLDER.test(workload.id)) return undefined;
  return (
    `${workload.id} has ${running.length} running pods (${running.join(', ')}), and a ${workload.id.split('/')[0]}'s pods share one data folder in the bucket ` +
    `(${workload.folder}/): their backups would overwrite each other. Run it with one replica, or as a StatefulSet, whose pods each keep their own folder ` +
    `(during a rolling update of one replica, back up again once the old pod is gone)`
  );
}

/**
 * Fails when another running Victoria pod of the namespace would back up into `pod`'s folder:
 * another pod of the same Deployment (sharedFolderProblem), or a pod of another workload whose
 * name maps to the same folder (a Deployment `vm-0` beside a StatefulSet pod `vm-0`, a bare pod
 * named like a Deployment). Either would overwrite this backup and delete its files as stale.
 */
export async function checkSoleWriter(kube: KubeClient, pod: KubeObject, workload: Workload): Promise<void> {
  const namespace = pod.metadata?.namespace ?? '';
  const running: string[] = [];
  for (const p of await kube.listPods(namespace, KIND_LABEL)) {
    if (!isRunning(p)) continue;
    const other = await workloadOf(kube, { kind: 'Pod', ...p } as KubeObject);
    if (other.folder !== workload.folder) continue;
    if (other.id === workload.id) running.push(p.metadata?.name ?? '');
    else {
      throw new Error(
        `${workload.id} and ${other.id} (pod ${p.metadata?.name}) in namespace ${namespace} both back up into the folder ${namespace}/${workload.folder}/, ` +
          'where each backup would overwrite the other: rename one of them',
      );
    }
  }
  const problem = sharedFolderProblem(workload, running);
  if (problem) throw new Error(problem);
}
