/**
 * The objects a pod cannot start without: the Secrets and ConfigMaps its volumes, environment and
 * image pulls name, and its ServiceAccount. A drill restores only the labelled Victoria objects
 * (drill.ts: any other pod of the namespace would come back on its production hostPath), so the
 * pod restore action hands these to Velero as additional items, which Velero restores from the
 * backup whatever the Restore's label selector says.
 */
import type { ResourceIdentifier } from '../velero/types.js';
import type { Pod } from './pod-spec.js';

type Named = { name?: unknown } | undefined;
type EnvVar = { valueFrom?: { secretKeyRef?: Named; configMapKeyRef?: Named } };
type EnvFrom = { secretRef?: Named; configMapRef?: Named };
type VolumeSource = { secret?: { secretName?: unknown }; configMap?: Named; projected?: { sources?: Array<{ secret?: Named; configMap?: Named }> } };

const nameOf = (ref: Named): string | undefined => (typeof ref?.name === 'string' && ref.name !== '' ? ref.name : undefined);

export function podReferences(pod: Pod, namespace: string): ResourceIdentifier[] {
  const secrets = new Set<string>();
  const configMaps = new Set<string>();
  const add = (set: Set<string>, name: string | undefined): void => void (name && set.add(name));
  const spec = pod.spec ?? {};
  for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
    for (const e of (c.env as EnvVar[] | undefined) ?? []) {
      add(secrets, nameOf(e.valueFrom?.secretKeyRef));
      add(configMaps, nameOf(e.valueFrom?.configMapKeyRef));
    }
    for (const e of (c.envFrom as EnvFrom[] | undefined) ?? []) {
      add(secrets, nameOf(e.secretRef));
      add(configMaps, nameOf(e.configMapRef));
    }
  }
  for (const v of (spec.volumes ?? []) as VolumeSource[]) {
    add(secrets, typeof v.secret?.secretName === 'string' ? v.secret.secretName : undefined);
    add(configMaps, nameOf(v.configMap));
    for (const s of v.projected?.sources ?? []) {
      add(secrets, nameOf(s.secret));
      add(configMaps, nameOf(s.configMap));
    }
  }
  for (const s of (spec.imagePullSecrets as Named[] | undefined) ?? []) add(secrets, nameOf(s));
  // Kubernetes makes these in every namespace, the drill's too (kube-root-ca.crt: the API token volume's CA).
  configMaps.delete('kube-root-ca.crt');
  const refs = (resource: string, names: Iterable<string>) => [...names].sort().map((name) => ({ group: '', resource, namespace, name }));
  const account = typeof spec.serviceAccountName === 'string' && spec.serviceAccountName !== 'default' ? [spec.serviceAccountName] : [];
  return [...refs('secrets', secrets), ...refs('configmaps', configMaps), ...refs('serviceaccounts', account)];
}

/**
 * The PersistentVolumeClaims a pod mounts, which a drill does not hand to Velero: a claim restored
 * from the backup is bound to the production volume (its volumeName), which the drill must not
 * touch. A drill pod that mounts one waits for it in Pending.
 */
export function podClaims(pod: Pod): string[] {
  const claims = ((pod.spec?.volumes ?? []) as Array<{ persistentVolumeClaim?: { claimName?: unknown } }>).map((v) => v.persistentVolumeClaim?.claimName);
  return [...new Set(claims.filter((c): c is string => typeof c === 'string' && c !== ''))];
}
