import { parseVeleroCR } from '../velero/items.js';

/**
 * What the restore action needs from the Restore CR Velero passes along with each item: its name
 * and UID (the restore plan's folder), Velero's namespace, the backup it restores, the namespace
 * mapping (a mapped namespace makes the restore a drill) and its resource modifiers, if any.
 */
export interface VeleroRestoreInfo {
  name: string;
  /** metadata.uid; the name when Velero sent none (restore plans are kept per UID). */
  uid: string;
  veleroNamespace: string;
  backupName: string;
  namespaceMapping: Record<string, string>;
  /** The ConfigMap of the Restore's resource modifiers, which Velero applies after the item actions. */
  resourceModifier?: string;
}

interface RestoreJson {
  metadata?: { name?: string; namespace?: string; uid?: string };
  spec?: { backupName?: string; namespaceMapping?: Record<string, unknown> | null; resourceModifier?: { name?: unknown } | null };
}

export function parseVeleroRestore(bytes: Buffer, env: NodeJS.ProcessEnv = process.env): VeleroRestoreInfo {
  const { cr: restore, name, veleroNamespace } = parseVeleroCR<RestoreJson>('Restore', bytes, env);
  const backupName = restore.spec?.backupName;
  if (!backupName) throw new Error(`restore ${name} has no spec.backupName: Velero fills it in (also for --from-schedule) before it restores items`);
  const namespaceMapping: Record<string, string> = {};
  for (const [from, to] of Object.entries(restore.spec?.namespaceMapping ?? {})) if (typeof to === 'string' && to !== '') namespaceMapping[from] = to;
  return {
    name,
    uid: restore.metadata?.uid || name,
    veleroNamespace,
    backupName,
    namespaceMapping,
    ...(typeof restore.spec?.resourceModifier?.name === 'string' && restore.spec.resourceModifier.name !== '' ? { resourceModifier: restore.spec.resourceModifier.name } : {}),
  };
}

/** Where the Restore puts the objects of `namespace`: its mapping's target, else the same namespace (a drill when it differs). */
export function targetNamespace(restore: VeleroRestoreInfo, namespace: string): string {
  return restore.namespaceMapping[namespace] ?? namespace;
}
