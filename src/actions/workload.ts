/**
 * Which workload a Victoria pod belongs to: its data folder in the bucket is named after it
 * (record.ts). A Deployment's pods are found through their ReplicaSet; a StatefulSet's pods (and
 * bare pods) keep their own names, which are stable and each have their own data.
 */
import type { KubeClient } from '../kube/client.js';
import type { KubeObject } from '../velero/types.js';

export interface Workload {
  /** `Deployment/<name>`, `StatefulSet/<name>` or `Pod/<name>`, for messages and the record. */
  id: string;
  /** Folder name under the namespace. */
  folder: string;
}

interface OwnerReference {
  kind?: string;
  name?: string;
  controller?: boolean;
}

const controllerOf = (meta: { ownerReferences?: OwnerReference[] } | undefined): OwnerReference | undefined =>
  meta?.ownerReferences?.find((o) => o.controller) ?? meta?.ownerReferences?.[0];

export async function workloadOf(kube: KubeClient, pod: KubeObject): Promise<Workload> {
  const namespace = pod.metadata?.namespace ?? '';
  const name = pod.metadata?.name ?? '';
  const owner = controllerOf(pod.metadata as { ownerReferences?: OwnerReference[] });
  if (owner?.kind === 'ReplicaSet' && owner.name) {
    // The ReplicaSet may be gone (rolled over) by the time of the backup: the hash suffix is then
    // the only link left, and Deployment ReplicaSets are named `<deployment>-<hash>`.
    const rs = await kube.getReplicaSet(namespace, owner.name).catch(() => undefined);
    const deployment = rs ? controllerOf(rs.metadata)?.name : owner.name.replace(/-[a-z0-9]+$/, '');
    if (deployment && (!rs || controllerOf(rs.metadata)?.kind === 'Deployment')) return { id: `Deployment/${deployment}`, folder: deployment };
    return { id: `ReplicaSet/${owner.name}`, folder: owner.name };
  }
  if (owner?.kind === 'StatefulSet' && owner.name) return { id: `StatefulSet/${owner.name}`, folder: name };
  return { id: `Pod/${name}`, folder: name };
}
