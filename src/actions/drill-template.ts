/**
 * Execute of the workload restore action (workload-restore.ts): in a drill (the Restore maps the
 * workload's namespace elsewhere), the pod template's data volume, found through the companion's
 * mount at /victoria-data, moves to the drill path, and the database keeps every sample of the
 * backup on the pod network: the restored pods' rewrite (drillPod), so no pod the drill's
 * controllers create can open the production directory. A StatefulSet's updates wait for
 * deletion (OnDelete), so that its controller keeps the restored pods. A workload whose kind label
 * is neither metrics nor logs is refused in a drill. Outside drills the item is restored unchanged.
 */
import { KubeClient } from '../kube/client.js';
import { logRef, parseItemFromBackup } from '../velero/items.js';
import type { ActionContext, ItemInput, KubeObject, RestoreExecuteResult } from '../velero/types.js';
import { isSourceKind } from '../victoria/types.js';
import { KIND_LABEL } from './names.js';
import { loadPluginConfig } from './plugin-config-source.js';
import { drillPod } from './drill-spec.js';
import { findDataVolume, type Pod } from './pod-spec.js';
import { parseVeleroRestore, targetNamespace } from './velero-restore.js';

type Workload = KubeObject & { spec?: { template?: Pod } };

export async function executeDrillTemplate(
  input: ItemInput & { restore: Buffer; itemFromBackup: Buffer },
  ctx: ActionContext,
): Promise<RestoreExecuteResult | undefined> {
  const item = input.item as Workload;
  const restore = parseVeleroRestore(input.restore);
  const namespace = item.metadata?.namespace ?? '';
  const target = targetNamespace(restore, namespace);
  const template = item.spec?.template;
  if (target === namespace || !template) return undefined;
  const id = `${item.kind} ${namespace}/${item.metadata?.name}`;
  const kind = item.metadata?.labels?.[KIND_LABEL];
  if (!isSourceKind(kind)) {
    // Its backup reported the label already (the workload check); restoring it unchanged would
    // start its pods in the drill namespace on the production hostPath, beside production.
    throw new Error(
      `${id}: its label ${KIND_LABEL} is ${JSON.stringify(kind)}, neither metrics nor logs, so it is no Victoria workload the drill can move to a drill path, ` +
        `and restored as it is its pods would open the production hostPath: not restored into ${target}. Fix the label on the workload and its pod template, then drill a backup made after that`,
    );
  }
  const config = await loadPluginConfig(KubeClient.load(), restore.veleroNamespace);
  const { volume } = findDataVolume(template, config.companionContainer, `the pod template of ${id}`);
  const backedUp = (parseItemFromBackup(input.itemFromBackup) as Workload | undefined)?.spec?.template ?? template;
  const { pod: drillTemplate, moved, note } = drillPod(template, backedUp, volume, config, { restore: restore.name, namespace: target });
  const where = moved
    ? `uses hostPath ${moved.path}, not the production path ${moved.production}`
    : `keeps its data volume "${volume.name}", which is not a hostPath; it must not be the production volume`;
  ctx.log.info(`drill: the pod template of ${id} (restored into ${target}) ${where}; ${note}`, {
    namespace: target,
    name: item.metadata?.name ?? '',
    restore: logRef(restore),
  });
  // A StatefulSet's or DaemonSet's rewritten template is a new revision: its controller, adopting the
  // restored pod (old revision, the one with the restore's init container), would replace it by one
  // from the template, without it, cancelling the verify hook. OnDelete keeps the restored pod.
  const keepsPods = item.kind === 'StatefulSet' || item.kind === 'DaemonSet';
  if (keepsPods) {
    ctx.log.info(`drill: ${id} gets updateStrategy OnDelete, so its controller keeps the restored pods`, {
      namespace: target,
      name: item.metadata?.name ?? '',
      restore: logRef(restore),
    });
  }
  const onDelete = keepsPods ? { updateStrategy: { type: 'OnDelete' } } : {};
  return { item: { ...item, spec: { ...item.spec, ...onDelete, template: drillTemplate } } };
}
