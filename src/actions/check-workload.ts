/**
 * Execute of the workload check (workload-check.ts): no silent skip (design.md). The pod action captures the data, but only for a pod that runs, has the companion and whose pre
 * hook succeeded; otherwise Velero never calls it and the backup would look fine. Velero backs up
 * a workload after its pods (apps resources come after core ones; with the default single item
 * block worker always after), so here every pod's folder must hold a complete backup of this
 * backup's name. If not, the item fails with a message naming the workload and the reason, which
 * makes the backup PartiallyFailed and shows in `velero backup describe`.
 */
import { COMPLETE_KEY } from '../engine/manifest.js';
import { KubeClient } from '../kube/client.js';
import type { ActionContext, BackupExecuteResult, ItemInput, KubeObject } from '../velero/types.js';
import { loadPluginConfig } from './plugin-config-source.js';
import { workloadPrefix } from './record.js';
import { openLocationStore } from './storage.js';
import { backupToAct } from './velero-backup.js';
import { isRunning, sharedFolderProblem, workloadOf } from './workload.js';

interface PodLike {
  metadata?: KubeObject['metadata'];
  spec?: { containers?: Array<{ name?: string }> };
  status?: { phase?: string };
}

export async function executeWorkloadCheck(
  input: ItemInput & { backup: Buffer },
  ctx: ActionContext,
): Promise<BackupExecuteResult | undefined> {
  const backup = backupToAct(input.backup);
  if (!backup) return undefined;
  const item = input.item;
  const namespace = item.metadata?.namespace ?? '';
  const id = `${item.kind} ${namespace}/${item.metadata?.name}`;
  const fields = { namespace, name: item.metadata?.name ?? '', backup: backup.name };
  const missing = (why: string) => new Error(`${id}: its Victoria data is NOT in backup ${backup.name}: ${why}`);
  const kube = KubeClient.load();
  const config = await loadPluginConfig(kube, backup.veleroNamespace);
  const selector = (item as { spec?: { selector?: { matchLabels?: Record<string, string> } } }).spec?.selector?.matchLabels;
  const labelSelector = Object.entries(selector ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
  const pods = (await kube.listPods(namespace, labelSelector)) as PodLike[];
  const own: Array<{ pod: PodLike; folder: string }> = [];
  for (const pod of pods) {
    const w = await workloadOf(kube, { kind: 'Pod', ...pod } as KubeObject);
    if (w.id === `${item.kind}/${item.metadata?.name}`) own.push({ pod, folder: w.folder });
  }
  const running = own.filter((p) => isRunning(p.pod));
  if (running.length === 0) throw missing(`no running pod (${own.length} pod(s), replicas scaled to 0 or not started): start it and back up again`);
  const shared = sharedFolderProblem({ id: `${item.kind}/${item.metadata?.name}`, folder: running[0]!.folder }, running.map((p) => p.pod.metadata?.name ?? ''));
  if (shared) throw missing(shared);
  const withoutCompanion = running.filter((p) => !(p.pod.spec?.containers ?? []).some((c) => c.name === config.companionContainer));
  if (withoutCompanion.length > 0) {
    throw missing(`pod ${withoutCompanion[0]!.pod.metadata?.name} has no "${config.companionContainer}" container: add the companion sidecar (velero/components/)`);
  }
  const location = await openLocationStore({
    kube,
    namespace: backup.veleroNamespace,
    location: backup.storageLocation,
    prefixOf: (bslPrefix) => workloadPrefix(bslPrefix, namespace, ''), // the namespace's folder
    write: false,
  });
  try {
    for (const { pod, folder } of running) {
      const marker = `${folder}/${backup.name}/${COMPLETE_KEY}`;
      const found = await location.store.head(marker);
      if (!found) {
        throw missing(
          `pod ${pod.metadata?.name} was not captured (its pre hook or its backup failed: see the errors for pod ${namespace}/${pod.metadata?.name} in this backup's log)`,
        );
      }
    }
    ctx.log.info(`${id}: Victoria data of ${running.length} pod(s) is in backup ${backup.name}`, fields);
  } finally {
    await location.close();
  }
  return undefined;
}
