import { parseVeleroCR } from '../velero/items.js';
import type { BackupFilters } from './backup-filters.js';
import { COUNTS_LABEL } from './names.js';

/**
 * What the actions need from the Backup CR Velero passes along with each item: its name, its
 * namespace (Velero's own), the storage location (Velero fills it in before calling actions), the
 * phase (to recognise the finalize pass), the start time (to recognise stale snapshots), the
 * value of its counts label and its item filters (to tell a pod left out on purpose).
 */
export interface VeleroBackupInfo {
  name: string;
  veleroNamespace: string;
  storageLocation: string;
  phase?: string;
  startedAt?: Date;
  /** The Backup's COUNTS_LABEL as given (`true`, `false`, or anything else, which the action names). */
  countsLabel?: string;
  filters: BackupFilters;
}

interface BackupJson {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  spec?: BackupFilters & { storageLocation?: string };
  status?: { phase?: string; startTimestamp?: string };
}

export function parseVeleroBackup(bytes: Buffer, env: NodeJS.ProcessEnv = process.env): VeleroBackupInfo {
  const { cr: backup, name, veleroNamespace } = parseVeleroCR<BackupJson>('Backup', bytes, env);
  const storageLocation = backup.spec?.storageLocation;
  if (!storageLocation) throw new Error(`backup ${name} has no spec.storageLocation: Velero sets it before it runs actions; is this Velero older than v1.14?`);
  const started = backup.status?.startTimestamp ? new Date(backup.status.startTimestamp) : undefined;
  const { includedResources, excludedResources, includedNamespaceScopedResources, excludedNamespaceScopedResources, labelSelector, orLabelSelectors } = backup.spec ?? {};
  return {
    name,
    veleroNamespace,
    storageLocation,
    filters: { includedResources, excludedResources, includedNamespaceScopedResources, excludedNamespaceScopedResources, labelSelector, orLabelSelectors },
    ...(backup.status?.phase ? { phase: backup.status.phase } : {}),
    ...(started && !Number.isNaN(started.getTime()) ? { startedAt: started } : {}),
    ...(backup.metadata?.labels?.[COUNTS_LABEL] !== undefined ? { countsLabel: backup.metadata.labels[COUNTS_LABEL] } : {}),
  };
}

/**
 * The Backup, or undefined in the finalize pass: Velero then re-runs actions only for the
 * postOperationItems that asynchronous operations named, and this plugin's actions name none (the
 * workload check's operation included), so there is nothing to do.
 */
export function backupToAct(bytes: Buffer): VeleroBackupInfo | undefined {
  const backup = parseVeleroBackup(bytes);
  return backup.phase?.startsWith('Finalizing') ? undefined : backup;
}
