/**
 * The workload check (workload-check.ts): no silent skip (docs/velero-backup.md, "How a backup
 * flows", step 4). The pod action captures the data, but only for a pod that runs, has the
 * companion and whose pre hook succeeded; otherwise Velero never calls it and the backup would look
 * fine. Execute checks at once what the API shows (a running pod, the companion, one pod per shared
 * folder) and returns an asynchronous operation naming the running pods' folders; Velero asks for
 * its progress once every item of the backup is done (backup_controller.go), and only then are the
 * pods' complete markers looked for. Execute cannot look for them itself: with
 * `--item-block-worker-count` above 1 (Velero 1.16+) the pods' uploads may still run while their
 * workload's item block is processed. A marker missing then fails the operation with a message
 * naming the workload and the pod, which makes the backup PartiallyFailed and shows in its log and
 * `velero backup describe`.
 */
import { COMPLETE_KEY } from '../engine/manifest.js';
import { KubeClient } from '../kube/client.js';
import { logRef } from '../velero/items.js';
import type { ActionContext, BackupExecuteResult, ItemInput, KubeObject, OperationProgress } from '../velero/types.js';
import { isSourceKind } from '../victoria/types.js';
import { podExclusion } from './backup-filters.js';
import { KIND_LABEL } from './names.js';
import { loadPluginConfig } from './plugin-config-source.js';
import { workloadPrefix } from './record.js';
import { openLocationStore } from './storage.js';
import { backupToAct, parseVeleroBackup } from './velero-backup.js';
import { isRunning, sharedFolderProblem, workloadOf } from './workload.js';

interface PodLike {
  metadata?: KubeObject['metadata'];
  spec?: { containers?: Array<{ name?: string }>; nodeName?: string };
  status?: { phase?: string };
}

/**
 * The check never fails the item: Velero leaves an item whose action failed out of the backup
 * (item_backupper.go), and a backup without the workload (Deployment, StatefulSet, DaemonSet) could not recreate it.
 * A workload whose data is missing is an error line instead, which Velero counts against the
 * backup (PartiallyFailed) while the workload's manifest stays in it.
 */
export async function executeWorkloadCheck(
  input: ItemInput & { backup: Buffer },
  ctx: ActionContext,
): Promise<BackupExecuteResult | undefined> {
  const backup = backupToAct(input.backup);
  if (!backup) return undefined;
  const item = input.item;
  const namespace = item.metadata?.namespace ?? '';
  const id = `${item.kind} ${namespace}/${item.metadata?.name}`;
  try {
    return await checkWorkload(item, id, backup, ctx);
  } catch (err) {
    const message = err instanceof MissingData ? err.message : `${id}: cannot check that its Victoria data is in backup ${backup.name}: ${(err as Error).message}`;
    ctx.log.error(message, { namespace, name: item.metadata?.name ?? '', resource: RESOURCES[item.kind] ?? 'deployments.apps' });
    return undefined;
  }
}

/** The resource of each kind of item the check is given, for the error line's fields. */
const RESOURCES: Record<string, string> = { Deployment: 'deployments.apps', StatefulSet: 'statefulsets.apps', DaemonSet: 'daemonsets.apps' };

/** Data of the workload that is not in the backup, said in full (notInBackup). */
class MissingData extends Error {}

/** The checks; `id` names the workload (`Deployment monitoring/vmsingle`). */
async function checkWorkload(item: KubeObject, id: string, backup: NonNullable<ReturnType<typeof backupToAct>>, ctx: ActionContext): Promise<BackupExecuteResult | undefined> {
  const namespace = item.metadata?.namespace ?? '';
  const missing = (why: string) => new MissingData(notInBackup(id, backup.name, why));
  const kind = item.metadata?.labels?.[KIND_LABEL];
  if (!isSourceKind(kind)) {
    throw missing(`its label ${KIND_LABEL} is ${JSON.stringify(kind)}; set it to metrics or logs, on the workload and on its pod template (spec.template.metadata.labels)`);
  }
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
  // A pod the Backup leaves out on purpose is the user's choice, not a failure: Velero never hands
  // it to the pod action, so its data is missing by request. A warning says so, naming the filter.
  const included = own.filter(({ pod }) => {
    const why = podExclusion(backup.filters, pod.metadata?.labels ?? {});
    if (why) ctx.log.warn(notInBackup(id, backup.name, `pod ${pod.metadata?.name} is left out: ${why}`), { namespace, backup: logRef(backup) });
    return !why;
  });
  if (own.length > 0 && included.length === 0) return undefined;
  const running = included.filter((p) => isRunning(p.pod));
  if (running.length === 0) throw missing(`no running pod (${own.length} pod(s), replicas scaled to 0 or not started): start it and back up again`);
  const excluded = own.filter((p) => !included.includes(p)).map((p) => p.pod);
  const absent =
    statefulSetGaps(item, running.map((p) => p.pod), excluded) ??
    daemonSetGaps(item, running.length + excluded.length, included.filter((p) => !isRunning(p.pod)).map((p) => p.pod));
  if (absent) throw missing(absent);
  const shared = sharedFolderProblem({ id: `${item.kind}/${item.metadata?.name}`, folder: running[0]!.folder }, running.map((p) => p.pod.metadata?.name ?? ''));
  if (shared) throw missing(shared);
  const withoutCompanion = running.filter((p) => !(p.pod.spec?.containers ?? []).some((c) => c.name === config.companionContainer));
  if (withoutCompanion.length > 0) {
    throw missing(`pod ${withoutCompanion[0]!.pod.metadata?.name} has no "${config.companionContainer}" container: add the companion sidecar (velero/components/)`);
  }
  // Velero hands the pod action only pods with the kind label: a pod template without it (the label
  // set on the Deployment alone) would be passed over silently and fail below as "not captured".
  const unlabelled = running.find((p) => !isSourceKind(p.pod.metadata?.labels?.[KIND_LABEL]));
  if (unlabelled) {
    throw missing(`pod ${unlabelled.pod.metadata?.name} lacks the label ${KIND_LABEL}=metrics or logs, so the pod action never sees it: add ${KIND_LABEL}: ${kind} to the pod template's labels (spec.template.metadata.labels), as velero/components/ do`);
  }
  const check: PendingCheck = { v: 1, workload: id, namespace, pods: running.map(({ pod, folder }) => ({ name: pod.metadata?.name ?? '', folder })) };
  return { operationID: `${OPERATION_PREFIX}${JSON.stringify(check)}` };
}

/**
 * A StatefulSet's replicas each keep data of their own (their own folder, their own hostPath), so
 * one that is not running (evicted, pending, not yet recreated) is missing from the backup, also
 * while the others run; a Deployment's one pod has no such siblings. Pods the Backup leaves out on
 * purpose were warned about already.
 */
function statefulSetGaps(item: KubeObject, running: PodLike[], excluded: PodLike[]): string | undefined {
  if (item.kind !== 'StatefulSet') return undefined;
  const spec = (item as { spec?: { replicas?: number; ordinals?: { start?: number } } }).spec;
  const replicas = spec?.replicas ?? 1;
  const start = spec?.ordinals?.start ?? 0;
  const have = new Set([...running, ...excluded].map((p) => p.metadata?.name));
  const absent = Array.from({ length: replicas }, (_, i) => `${item.metadata?.name}-${start + i}`).filter((name) => !have.has(name));
  if (absent.length === 0) return undefined;
  return `pod(s) ${absent.join(', ')} of its ${replicas} replicas not running, and each replica keeps data of its own: start them and back up again`;
}

/**
 * A DaemonSet's pod on each node keeps that node's data (its own folder, `<daemonset>@<node>`), so
 * fewer pods running than the DaemonSet schedules means a node's data is missing. Which nodes the
 * controller has no pod on at all only the DaemonSet's status counts (desiredNumberScheduled);
 * its pods that exist but do not run are named with their nodes. Pods the Backup leaves out on
 * purpose were warned about already and count as present (`present`: running or left out).
 */
function daemonSetGaps(item: KubeObject, present: number, idle: PodLike[]): string | undefined {
  if (item.kind !== 'DaemonSet') return undefined;
  const desired = (item as { status?: { desiredNumberScheduled?: number } }).status?.desiredNumberScheduled;
  if (desired === undefined || present >= desired) return undefined;
  const named = idle.map((p) => `${p.metadata?.name} on ${p.spec?.nodeName ? `node ${p.spec.nodeName}` : 'no node yet'}`);
  return (
    `only ${present} of the ${desired} pods it schedules (one per node) are running${named.length > 0 ? ` (not running: ${named.join(', ')})` : ''}, ` +
    "and each node's pod keeps that node's data: start them and back up again"
  );
}

/** Every error of the check starts the same way, so that one search of the backup log finds them all. */
const notInBackup = (workload: string, backup: string, why: string): string => `${workload}: its Victoria data is NOT in backup ${backup}: ${why}`;

/** What Execute leaves for Progress: the pods whose markers must be in the backup, and where. */
interface PendingCheck {
  v: 1;
  /** `Deployment monitoring/vmsingle`, for messages. */
  workload: string;
  namespace: string;
  pods: Array<{ name: string; folder: string }>;
}

const OPERATION_PREFIX = 'workload-check:';

function parseCheck(operationID: string): PendingCheck | undefined {
  if (!operationID.startsWith(OPERATION_PREFIX)) return undefined;
  try {
    const check = JSON.parse(operationID.slice(OPERATION_PREFIX.length)) as PendingCheck;
    return check?.v === 1 && Array.isArray(check.pods) ? check : undefined;
  } catch {
    return undefined;
  }
}

/** Progress of the check: complete at once, with an error naming the first pod not captured. */
export async function workloadCheckProgress(operationID: string, backupBytes: Buffer, ctx: ActionContext): Promise<OperationProgress> {
  const check = parseCheck(operationID);
  if (!check) return { completed: true, err: `no asynchronous operation "${operationID}" of the workload check` };
  const backup = parseVeleroBackup(backupBytes);
  const fields = { namespace: check.namespace, backup: logRef(backup) };
  const kube = KubeClient.load();
  const location = await openLocationStore({
    kube,
    namespace: backup.veleroNamespace,
    location: backup.storageLocation,
    prefixOf: (bslPrefix) => workloadPrefix(bslPrefix, check.namespace, ''), // the namespace's folder
    write: false,
  });
  try {
    for (const pod of check.pods) {
      if (!(await location.store.head(`${pod.folder}/${backup.name}/${COMPLETE_KEY}`))) {
        return {
          completed: true,
          err: notInBackup(
            check.workload,
            backup.name,
            // The pod was listed as the backup began; in a rolling update Velero may have backed up another pod of the workload.
            `no complete backup of it in the bucket (${pod.folder}/${backup.name}/): its pod was not captured, its pre hook or its backup failed; ` +
              `see the errors of its pods in namespace ${check.namespace} in this backup's log (${pod.name} ran as the backup began)`,
          ),
        };
      }
    }
    ctx.log.info(`${check.workload}: Victoria data of ${check.pods.length} pod(s) is in backup ${backup.name}`, fields);
    return { completed: true };
  } catch (err) {
    return { completed: true, err: `${check.workload}: cannot check that its Victoria data is in backup ${backup.name}: ${(err as Error).message}` };
  } finally {
    await location.close();
  }
}
