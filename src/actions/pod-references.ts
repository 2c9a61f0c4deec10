/**
 * The objects a pod cannot start without: the Secrets and ConfigMaps its volumes, environment and
 * image pulls name, and its ServiceAccount. Velero's additional items are taken whatever the
 * Backup's or Restore's label selector says (its resource and namespace filters still apply), so:
 * the pod backup action hands these to Velero, and a backup of a Schedule that selects only the
 * labelled Victoria objects still holds what their pods need on a new cluster; and the pod restore
 * action hands them over in a drill, which restores only the labelled Victoria objects (drill.ts:
 * any other pod of the namespace would come back on its production hostPath).
 */
import type { ResourceIdentifier } from '../velero/types.js';
import type { Pod } from './pod-spec.js';

type Named = { name?: unknown; optional?: unknown } | undefined;
type EnvVar = { valueFrom?: { secretKeyRef?: Named; configMapKeyRef?: Named } };
type EnvFrom = { secretRef?: Named; configMapRef?: Named };
type VolumeSource = { secret?: { secretName?: unknown; optional?: unknown }; configMap?: Named; projected?: { sources?: Array<{ secret?: Named; configMap?: Named }> } };

const nameOf = (ref: Named): string | undefined => (typeof ref?.name === 'string' && ref.name !== '' ? ref.name : undefined);

/**
 * The pod's references, in Velero's additional-item form. `required`: only those it cannot start
 * without, leaving out references marked `optional: true` (such as the components' auth-key
 * Secret, which most users never create: handed to a backup, each missing one would be a warning
 * `Additional item was not found` in every backup's log). `all`: a drill hands every one, as the
 * backup may hold an optional one that exists.
 */
export function podReferences(pod: Pod, namespace: string, which: 'all' | 'required' = 'all'): ResourceIdentifier[] {
  const secrets = new Set<string>();
  const configMaps = new Set<string>();
  const add = (set: Set<string>, ref: Named): void => {
    const name = nameOf(ref);
    if (name && (which === 'all' || ref?.optional !== true)) set.add(name);
  };
  const spec = pod.spec ?? {};
  for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
    for (const e of (c.env as EnvVar[] | undefined) ?? []) {
      add(secrets, e.valueFrom?.secretKeyRef);
      add(configMaps, e.valueFrom?.configMapKeyRef);
    }
    for (const e of (c.envFrom as EnvFrom[] | undefined) ?? []) {
      add(secrets, e.secretRef);
      add(configMaps, e.configMapRef);
    }
  }
  for (const v of (spec.volumes ?? []) as VolumeSource[]) {
    if (v.secret) add(secrets, { name: v.secret.secretName, optional: v.secret.optional });
    add(configMaps, v.configMap);
    for (const s of v.projected?.sources ?? []) {
      add(secrets, s.secret);
      add(configMaps, s.configMap);
    }
  }
  for (const s of (spec.imagePullSecrets as Named[] | undefined) ?? []) add(secrets, s);
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
