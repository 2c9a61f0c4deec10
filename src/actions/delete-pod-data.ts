/**
 * Execute of the pod delete action (pod-delete.ts): remove this backup's folder of the workload the
 * pod's record names. Only `<prefix>/<this backup's name>/` is removed, inside the plugin's folder
 * of the location, whatever the record says; other backups never depend on it (engine/delete.ts).
 */
import { deleteBackup } from '../engine/delete.js';
import { formatBytes } from '../engine/progress.js';
import { KubeClient } from '../kube/client.js';
import type { ActionContext, ItemInput } from '../velero/types.js';
import { PLUGIN_FOLDER, readRecord, type BackupRecord } from './record.js';
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
  const kube = KubeClient.load();
  const location = await openLocationStore({
    kube,
    namespace: backup.veleroNamespace,
    location: record.storageLocation,
    prefixOf: (bslPrefix) => {
      const ours = `${bslPrefix ? `${bslPrefix}/` : ''}${PLUGIN_FOLDER}/`;
      if (!record.prefix.startsWith(ours) || record.prefix.split('/').includes('..')) {
        throw new Error(`pod ${pod}: its backup record points at ${record.prefix}, outside ${ours} of location ${record.storageLocation}; nothing removed`);
      }
      return record.prefix;
    },
    write: true,
  });
  try {
    const removed = await deleteBackup(location.store, backup.name);
    ctx.log.info(`pod ${pod}: removed s3://${location.bucket}/${location.prefix}/${backup.name}/ (${removed.objects} objects, ${formatBytes(removed.bytes)})`, fields);
  } finally {
    await location.close();
  }
}
