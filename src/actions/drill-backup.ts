/**
 * Which backup a drill restores: the one named, checked (finished, and of the namespace), or the
 * newest Completed and counted backup of the namespace (of one Schedule, if asked).
 */
import { COUNTS_LABEL } from './names.js';
import type { KubeClient } from '../kube/client.js';
import { KubeError } from '../kube/errors.js';
import type { VeleroBackup } from '../kube/velero-objects.js';

const SCHEDULE_LABEL = 'velero.io/schedule-name';

/** Whether a Backup covers the namespace: listed (or `*`, or no list at all) and not excluded. */
function backupIncludes(backup: VeleroBackup, namespace: string): boolean {
  const spec = backup.spec as { includedNamespaces?: string[]; excludedNamespaces?: string[] };
  const included = spec.includedNamespaces ?? [];
  const excluded = spec.excludedNamespaces ?? [];
  if (excluded.includes(namespace) || excluded.includes('*')) return false;
  return included.length === 0 || included.includes('*') || included.includes(namespace);
}

const statusOf = (b: VeleroBackup) => (b.status ?? {}) as { phase?: string; completionTimestamp?: string };

export async function chooseBackup(kube: KubeClient, veleroNs: string, namespace: string, named: string | undefined, schedule: string | undefined): Promise<string> {
  if (named) {
    let backup: VeleroBackup;
    try {
      backup = await kube.getBackup(veleroNs, named);
    } catch (err) {
      if (err instanceof KubeError && err.code === 'NotFound') {
        throw new Error(`backup "${named}" not found in namespace ${veleroNs}: check the name (velero backup get) or --velero-namespace`);
      }
      throw err;
    }
    const phase = statusOf(backup).phase ?? '(none)';
    if (phase !== 'Completed' && phase !== 'PartiallyFailed') {
      throw new Error(`backup "${named}" in namespace ${veleroNs} is ${phase}, not Completed or PartiallyFailed: choose a finished backup (velero backup get)`);
    }
    if (!backupIncludes(backup, namespace)) {
      throw new Error(`backup "${named}" in namespace ${veleroNs} does not include namespace ${namespace}: choose a backup of ${namespace}, or fix --namespace`);
    }
    return named;
  }
  const all = await kube.listBackups(veleroNs, schedule ? `${SCHEDULE_LABEL}=${schedule}` : undefined);
  const candidates = all
    // A backup that was not counted could only be checked for checksums: the drill picks a counted one.
    .filter((b) => statusOf(b).phase === 'Completed' && b.metadata.name && backupIncludes(b, namespace) && b.metadata.labels?.[COUNTS_LABEL] !== 'false')
    .sort((a, b) => (statusOf(b).completionTimestamp ?? '').localeCompare(statusOf(a).completionTimestamp ?? ''));
  const newest = candidates[0];
  if (!newest) {
    const of = schedule ? ` of schedule ${schedule}` : '';
    throw new Error(
      `no Completed backup${of} that includes namespace ${namespace} and was counted (not labelled ${COUNTS_LABEL}=false) in namespace ${veleroNs} (${all.length} backup${all.length === 1 ? '' : 's'}${of} there): ` +
        `check velero backup get${schedule ? ` -l ${SCHEDULE_LABEL}=${schedule}` : ''}, --namespace and --velero-namespace, or name one with --backup`,
    );
  }
  return newest.metadata.name!;
}
