/**
 * Execute of the pod delete action (pod-delete.ts): remove this backup's folder of the workload the
 * pod's record names, in the Backup's storage location. Only `<workload folder>/<this backup's
 * name>/` is removed, inside the plugin's folder of the location, whatever the record says; other
 * backups never depend on it (engine/delete.ts).
 */
import { deleteBackup } from '../engine/delete.js';
import { formatBytes } from '../engine/progress.js';
import { KubeClient } from '../kube/client.js';
import { logRef } from '../velero/items.js';
import type { ActionContext, ItemInput } from '../velero/types.js';
import { PLUGIN_FOLDER, readRecordWhere, recordedWorkloadFolder, workloadPrefix } from './record.js';
import { openLocationStore } from './storage.js';
import { parseVeleroBackup } from './velero-backup.js';

/**
 * How to remove what a failed delete left: `prune` on the location (its bucket and prefix, perhaps
 * none, from the workload prefix `<bsl prefix>/plugins/victoria/<ns>/<workload>`).
 */
function pruneCommand(bucket: string, workloadPrefix: string, folder: string): string {
  const tail = `${PLUGIN_FOLDER}/${folder}`;
  if (!workloadPrefix.endsWith(tail)) return ' with your S3 tools';
  const location = [bucket, workloadPrefix.slice(0, -tail.length).replace(/\/$/, '')].filter(Boolean).join('/');
  return ` with: velero-plugin-victoria prune --location s3://${location} --delete`;
}

export async function executePodDelete(
  input: ItemInput & { backup: Buffer },
  ctx: ActionContext,
): Promise<void> {
  const pod = `${input.item.metadata?.namespace}/${input.item.metadata?.name}`;
  const backup = parseVeleroBackup(input.backup);
  let record: { prefix: string; bucket: string } | undefined;
  try {
    record = readRecordWhere(input.item.metadata?.annotations);
  } catch (err) {
    throw new Error(`pod ${pod}: the Victoria data of backup ${backup.name} cannot be found to remove: ${(err as Error).message}`);
  }
  const fields = { namespace: input.item.metadata?.namespace ?? '', name: input.item.metadata?.name ?? '', backup: logRef(backup) };
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
  const here = `s3://${location.bucket}/${location.prefix}/${backup.name}/`;
  try {
    let removed;
    try {
      removed = await deleteBackup(location.store, backup.name);
    } catch (err) {
      // Velero only logs a delete action's error, in its server log, and deletes the backup anyway:
      // nothing else will remove this data, so the message says how.
      throw new Error(
        `pod ${pod}: the Victoria data of backup ${backup.name} was NOT removed from ${here}: ${(err as Error).message}; ` +
          `once the location's credentials may delete there, remove it${pruneCommand(location.bucket, location.prefix, folder)}`,
      );
    }
    ctx.log.info(`pod ${pod}: removed ${here} (${removed.objects} objects, ${formatBytes(removed.bytes)})`, fields);
    // The record says where the data was written; the location may point elsewhere by now (its
    // bucket or prefix edited), and then the data stays where it was, which this must not hide.
    const recorded = `s3://${record.bucket}/${record.prefix}/${backup.name}/`;
    if (removed.objects === 0 && recorded !== here) {
      ctx.log.warn(
        `pod ${pod}: nothing of backup ${backup.name} was at ${here}, but the backup record says its data went to ${recorded} ` +
          '(the storage location was changed since): that data was not removed; delete it with your S3 tools',
        fields,
      );
    }
  } finally {
    await location.close();
  }
}
