/**
 * Execute of the pod delete action (pod-delete.ts): remove this backup's folder of the workload the
 * pod's record names, in the Backup's storage location. Only `<workload folder>/<this backup's
 * name>/` is removed, inside the plugin's folder of the location, whatever the record says; other
 * backups never depend on it (engine/delete.ts).
 */
import { deleteBackup } from '../engine/delete.js';
import { formatBytes } from '../engine/progress.js';
import { KubeClient } from '../kube/client.js';
import type { ActionContext, ItemInput } from '../velero/types.js';
import { readRecord, recordedWorkloadFolder, workloadPrefix, type BackupRecord } from './record.js';
import { openLocationStore } from './storage.js';
import { parseVeleroBackup } from './velero-backup.js';

export async function executePodDelete(
  input: ItemInput & { backup: Buffer },
  ctx: ActionContext,
): Promise<void> {
  const pod = `${input.item.metadata?.namespace}/${input.item.metadata?.name}`;
  const backup = parseVeleroBackup(input.backup);
  let record: BackupRecord | undefined;
  try {
    record = readRecord(input.item.metadata?.annotations);
  } catch (err) {
    throw new Error(`pod ${pod}: the Victoria data of backup ${backup.name} cannot be found to remove: ${(err as Error).message}`);
  }
  const fields = { namespace: input.item.metadata?.namespace ?? '', name: input.item.metadata?.name ?? '', backup: backup.name };
  if (!record) {
    ctx.log.info(`pod ${pod}: backup ${backup.name} holds no Victoria data for it (no record); nothing to remove`, fields);
    return;
  }
  let folder: string;
  try {
    folder = recordedWorkloadFolder(record);
  } catch (err) {
    throw new Error(`pod ${pod}: ${(err as Error).message}; nothing removed`);
  }
  // The location the Backup is in now, as Velero deletes it from there: after a disaster or a
  // migration it may have another name than the record's (or that name may point elsewhere).
  const [namespace, workload] = folder.split('/') as [string, string];
  const location = await openLocationStore({
    kube: KubeClient.load(),
    namespace: backup.veleroNamespace,
    location: backup.storageLocation,
    prefixOf: (bslPrefix) => workloadPrefix(bslPrefix, namespace, workload),
    write: true,
  });
  try {
    const removed = await deleteBackup(location.store, backup.name);
    ctx.log.info(`pod ${pod}: removed s3://${location.bucket}/${location.prefix}/${backup.name}/ (${removed.objects} objects, ${formatBytes(removed.bytes)})`, fields);
  } finally {
    await location.close();
  }
}
