/** The storage location a restore reads a backup's objects from (the restore action's side of storage.ts). */
import type { KubeClient } from '../kube/client.js';
import { KubeError } from '../kube/errors.js';
import { PLUGIN_FOLDER, recordedWorkloadFolder, type BackupRecord } from './record.js';
import { openLocationStore, type LocationStore } from './storage.js';
import type { VeleroRestoreInfo } from './velero-restore.js';

/** The location's store (its `prefix`: `<bsl prefix>/plugins/victoria`), with the backup found in it. */
export interface BackupLocation extends LocationStore {
  /** The BackupStorageLocation's name. */
  name: string;
  /** The backup's folder from the store's root: `<namespace>/<workload>/<backup>`. */
  backupKey: string;
}

/**
 * The bucket to read from, opened as Velero opens it: the storage location of the Backup being
 * restored (after a disaster, the new cluster's location may have another name or point at a
 * replica of the bucket), else the one in the record. The backup folder is found under that
 * location's prefix by the record's `<namespace>/<workload>/<backup>`.
 */
export async function openBackupLocation(kube: KubeClient, restore: VeleroRestoreInfo, record: BackupRecord): Promise<BackupLocation> {
  let name = record.storageLocation;
  const warnings: string[] = [];
  // The Backup that holds the data: the one being restored, or, for a record that came along from
  // an earlier restore (see restorePod), the one the record names, whose location may differ.
  try {
    const backup = await kube.getBackup(restore.veleroNamespace, record.name);
    if (backup.spec?.storageLocation) name = backup.spec.storageLocation;
  } catch (err) {
    if (!(err instanceof KubeError)) throw err;
    // Without the Backup the record's location is the best guess; where the API server refused
    // (RBAC, a timeout) rather than found none, that guess may be the wrong bucket after a disaster.
    if (err.code !== 'NotFound') {
      warnings.push(`could not read Backup ${restore.veleroNamespace}/${record.name} to find its storage location (${err.message}); reading from the location named in the backup record, ${name}`);
    }
  }
  const backupKey = `${recordedWorkloadFolder(record)}/${record.name}`;
  const location = await openLocationStore({
    kube,
    namespace: restore.veleroNamespace,
    location: name,
    prefixOf: (bslPrefix) => [bslPrefix, PLUGIN_FOLDER].filter(Boolean).join('/'),
    write: false,
  });
  return { ...location, name, backupKey, warnings: [...warnings, ...location.warnings] };
}
