/**
 * The typed subset of a pod that the actions read and change. Velero hands items as unstructured
 * JSON, so only the fields used are typed and everything else is kept as is.
 */
import type { KubeObject } from '../velero/types.js';

/** Where the companion mounts the data volume, and where the init container mounts it. */
export const DATA_MOUNT = '/victoria-data';

export interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  subPath?: string;
  subPathExpr?: string;
  [field: string]: unknown;
}

export interface Container {
  name: string;
  image?: string;
  volumeMounts?: VolumeMount[];
  securityContext?: Record<string, unknown>;
  [field: string]: unknown;
}

export interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  [field: string]: unknown;
}

export interface PodSpec {
  containers?: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  securityContext?: Record<string, unknown>;
  [field: string]: unknown;
}

export type Pod = KubeObject & { spec?: PodSpec };

const samePath = (a: string, b: string) => a.replace(/\/+$/, '') === b.replace(/\/+$/, '');

/** The volume the companion mounts at /victoria-data, and that mount. */
export function findDataVolume(pod: Pod, companion: string, podId: string): { volume: Volume; mount: VolumeMount } {
  const containers = pod.spec?.containers ?? [];
  const sidecar = containers.find((c) => c.name === companion);
  if (!sidecar) {
    throw new Error(
      `${podId} has no container "${companion}" (it has ${containers.map((c) => c.name).join(', ') || 'none'}): the restore finds the data volume through the companion's ` +
        `mount at ${DATA_MOUNT}; add the companion (velero/components/) or set companionContainer in the plugin ConfigMap`,
    );
  }
  const mount = (sidecar.volumeMounts ?? []).find((m) => samePath(m.mountPath, DATA_MOUNT));
  if (!mount) {
    const mounts = (sidecar.volumeMounts ?? []).map((m) => `${m.name} at ${m.mountPath}`).join(', ') || 'none';
    throw new Error(
      `${podId}: container "${companion}" mounts no volume at ${DATA_MOUNT} (its mounts: ${mounts}): mount the database's data volume there ` +
        `(velero/components/), so that the restore knows where the data goes`,
    );
  }
  const volume = (pod.spec?.volumes ?? []).find((v) => v.name === mount.name);
  if (!volume) throw new Error(`${podId}: container "${companion}" mounts volume "${mount.name}" at ${DATA_MOUNT}, but the pod has no volume of that name`);
  return { volume, mount };
}

/** What a volume is, for log lines: `hostPath /var/lib/vm`, `persistentVolumeClaim data`, `emptyDir`. */
export function describeVolume(volume: Volume): string {
  if (volume.hostPath) return `hostPath ${volume.hostPath.path}`;
  const claim = (volume.persistentVolumeClaim as { claimName?: string } | undefined)?.claimName;
  if (claim) return `persistentVolumeClaim ${claim}`;
  const type = Object.keys(volume).find((k) => k !== 'name');
  return type ?? 'volume';
}

/** The pod with volume `name` replaced. */
export function withVolume(pod: Pod, volume: Volume): Pod {
  const volumes = (pod.spec?.volumes ?? []).map((v) => (v.name === volume.name ? volume : v));
  return { ...pod, spec: { ...pod.spec, volumes } };
}
