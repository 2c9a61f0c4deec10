/**
 * The pod restore action's asynchronous operation (Velero's RestoreItemActionV2 operations): the
 * data of a restored Victoria pod arrives only when its `victoria-restore` init container has run,
 * after Velero has restored every item. Execute names the operation after the pod and its plan;
 * Velero then asks Progress every 10 s (in a new plugin process each time) until it answers
 * completed, or until the Restore's itemOperationTimeout. So the Restore stays
 * WaitingForPluginOperations while the data downloads, and a restore whose data never arrives
 * ends PartiallyFailed, with the reason in `velero restore describe --details`, instead of
 * Completed beside a pod stuck in its init container.
 */
import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { redact } from '../common/redact.js';
import { KubeClient } from '../kube/client.js';
import { KubeError } from '../kube/errors.js';
import type { ActionContext, OperationProgress } from '../velero/types.js';
import { logRef } from '../velero/items.js';
import { RESTORE_ACTION } from './names.js';
import { parseVeleroRestore } from './velero-restore.js';
import { RESTORE_CONTAINER, restorePlanOf } from './restore-container.js';

/**
 * Failed runs after which the operation fails. The init container retries S3 inside each run, so
 * a run that fails has already outlasted a passing fault; Kubernetes goes on restarting it (and
 * the VictoriaRestoreDataFailed alert goes on firing), but the Restore should not wait hours for
 * an expired plan or a refused data directory. Three runs with the kubelet's back-off take a few
 * minutes.
 */
export const MAX_FAILED_RUNS = 3;
/**
 * How long a pod may wait without the init container ever running (not scheduled, its image not
 * pulled, its configuration refused) before the operation fails. Nothing is stopped: the pod still
 * restores when it gets going, but a Restore should not say "waiting" for the 4 h of Velero's
 * default timeout when a node is gone or restoreImage is wrong; a cluster autoscaler adds a node
 * well within this.
 */
export const STUCK_MS = 30 * 60_000;
/** The kubelet's reasons for a container that cannot start, as opposed to one being set up. */
const CANNOT_START = new Set(['ImagePullBackOff', 'ErrImagePull', 'InvalidImageName', 'CreateContainerConfigError', 'CreateContainerError']);

/**
 * The longest line quoted from the init container: Velero keeps descriptions and errors in the
 * Restore's operations. Its error lines end with the fix, so they are kept whole up to this.
 */
export const MAX_QUOTE = 1000;

export interface RestoreOperation {
  namespace: string;
  pod: string;
  /** The SHA-256 of the restore plan: tells this restore's init container from another restore's. */
  planSha256: string;
}

/** `<namespace>/<pod>/<plan SHA-256>`: all that Progress, in a later plugin process, needs. */
export function restoreOperationId(op: RestoreOperation): string {
  return `${op.namespace}/${op.pod}/${op.planSha256}`;
}

export function parseRestoreOperationId(id: string): RestoreOperation | undefined {
  const m = /^([a-z0-9-]{1,63})\/([a-z0-9.-]{1,253})\/([0-9a-f]{64})$/.exec(id);
  return m ? { namespace: m[1]!, pod: m[2]!, planSha256: m[3]! } : undefined;
}

/** What the pod's state means for the operation: `pod` undefined when the API server has none of that name. */
export interface ObservedPod {
  pod: V1Pod | undefined;
  /** The last line the init container logged, when it runs (its progress line). */
  lastLogLine?: string;
  now: Date;
}

/**
 * Progress on one operation, as Velero asks it: the pod as the API server has it, and the init
 * container's last log line while it runs. API server trouble that may pass leaves the operation
 * running (Velero asks again in 10 s); what will not pass fails it.
 */
export async function restoreOperationProgress(operationID: string, restore: Buffer, ctx: ActionContext, kube?: KubeClient): Promise<OperationProgress> {
  const op = parseRestoreOperationId(operationID);
  if (!op) return { completed: true, err: `${RESTORE_ACTION} has no operation "${operationID}": its operations are named <namespace>/<pod>/<restore plan SHA-256>` };
  const now = new Date();
  // Velero's operations controller polls every Restore's operations in one worker: a hung API server must not hold it long.
  kube ??= KubeClient.load({ callTimeoutMs: POLL_CALL_TIMEOUT_MS });
  let pod: V1Pod | undefined;
  try {
    pod = await kube.getPod(op.namespace, op.pod);
  } catch (err) {
    if (!(err instanceof KubeError) || err.code !== 'NotFound') {
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof KubeError && PASSING.has(err.code)) return { completed: false, description: redact(`${message}; asking again`), started: now, updated: now };
      return { completed: true, err: redact(`the Victoria data of pod ${op.namespace}/${op.pod} cannot be followed: ${message}`), started: now, updated: now };
    }
  }
  const running = pod?.status?.initContainerStatuses?.some((s) => s.name === RESTORE_CONTAINER && s.state?.running);
  const lastLogLine = running ? await kube.podLogTail(op.namespace, op.pod, RESTORE_CONTAINER, 1).then(lastLine, () => undefined) : undefined;
  const progress = restoreProgress(op, { pod, now, ...(lastLogLine ? { lastLogLine } : {}) });
  if (progress.completed) {
    const fields = { namespace: op.namespace, name: op.pod, ...restoreField(restore) };
    if (progress.err) ctx.log.warn(`restore operation failed: ${progress.err}`, fields);
    else ctx.log.info(`pod ${op.namespace}/${op.pod}: ${progress.description ?? 'done'}`, fields);
  }
  return progress;
}

/**
 * Velero cancels an operation when the Restore's itemOperationTimeout has passed. The init
 * container is left to finish: stopping it would leave the pod with half its data, and the
 * database would start on nothing better.
 */
export function cancelRestoreOperation(operationID: string, restore: Buffer, ctx: ActionContext): void {
  const op = parseRestoreOperationId(operationID);
  if (!op) return;
  ctx.log.warn(
    `pod ${op.namespace}/${op.pod}: the Restore's itemOperationTimeout passed before init container ${RESTORE_CONTAINER} had restored its Victoria data; ` +
      'it is not stopped, and the database starts once the data is restored (kubectl get pod shows when); ' +
      'for restores this long, give the Restore a longer timeout (velero restore create --item-operation-timeout, docs/velero-restore.md)',
    { namespace: op.namespace, name: op.pod, ...restoreField(restore) },
  );
}

/** The log field naming the Restore, when its JSON parses: a poll's log line is no reason to fail the poll. */
function restoreField(restore: Buffer): { restore?: string } {
  try {
    return { restore: logRef(parseVeleroRestore(restore)) };
  } catch {
    return {};
  }
}

const POLL_CALL_TIMEOUT_MS = 10_000;

/** API server trouble that may pass (a timeout, no connection, a 5xx). */
const PASSING: ReadonlySet<string> = new Set(['Timeout', 'Unreachable', 'Failed']);

export function restoreProgress(op: RestoreOperation, seen: ObservedPod): OperationProgress {
  const { pod, now } = seen;
  const podId = `pod ${op.namespace}/${op.pod}`;
  // Velero shows a missing start as 1970 and takes each new one as a change: the pod's creation is the operation's start.
  const created = pod?.metadata?.creationTimestamp ? new Date(pod.metadata.creationTimestamp) : undefined;
  const at = { started: created ?? now, updated: now };
  const failed = (err: string): OperationProgress => ({ completed: true, err: redact(`${podId}: ${err}`), ...at });
  if (!pod) {
    return failed(
      `does not exist: Velero could not create it (\`error restoring pods/${op.namespace}/${op.pod}\` in velero restore describe: an admission policy, a quota, a webhook), ` +
        `or it was deleted before its init container ${RESTORE_CONTAINER} had restored its Victoria data (by hand, or by its controller: the restore log's warnings name one in the way); ` +
        'its data was not restored by this restore: fix that, delete the workload and restore again (docs/velero-restore.md, runbook)',
    );
  }
  const ours = restorePlanOf(pod as Parameters<typeof restorePlanOf>[0]) === op.planSha256;
  const status = ours ? pod.status?.initContainerStatuses?.find((s) => s.name === RESTORE_CONTAINER) : undefined;
  // Done before anything else: a pod whose data is in place may go (a rollout) without undoing it.
  if (status?.state?.terminated?.exitCode === 0) return { completed: true, description: `${RESTORE_CONTAINER}: data restored and verified`, ...at };
  if (pod.metadata?.deletionTimestamp) {
    return failed(
      `is being deleted before its init container ${RESTORE_CONTAINER} had restored its Victoria data (by hand, or by its controller: the restore log's warnings name one in the way); ` +
        'its data was not restored by this restore: delete the workload and restore again (docs/velero-restore.md, runbook)',
    );
  }
  if (!ours) {
    return failed(
      `it is not the pod this restore created: it has no init container ${RESTORE_CONTAINER} with this restore's plan (it existed already, or was replaced), ` +
        'so its Victoria data was not restored by this restore: delete the workload and restore again (docs/velero-restore.md, runbook)',
    );
  }
  const runs = failedRuns(status);
  const why = clip(lastFailure(status));
  const logs = `kubectl logs -n ${op.namespace} ${op.pod} -c ${RESTORE_CONTAINER}`;
  if (pod.status?.phase === 'Failed' && runs === 0) {
    // Evicted, shut down with its node, preempted: before the init container ever failed.
    const reason = [pod.status.reason, pod.status.message].filter(Boolean).join(': ');
    return failed(`has failed${reason ? ` (${clip(reason)})` : ''} before its init container ${RESTORE_CONTAINER} had restored its Victoria data; delete the workload and restore again (docs/velero-restore.md, runbook)`);
  }
  if (pod.status?.phase === 'Failed' || runs >= MAX_FAILED_RUNS) {
    const retrying = pod.status?.phase === 'Failed' ? 'the pod has failed' : 'Kubernetes goes on restarting it, but this restore counts its data as not restored';
    return failed(`init container ${RESTORE_CONTAINER} failed ${runs} time(s)${why ? `, last: ${why}` : ''}; ${retrying}; ${logs} shows the whole run (docs/velero-restore.md, "Messages and what to do")`);
  }
  const description = redact(describeWait(pod, status, runs, why, clip(seen.lastLogLine)));
  if (neverStarted(pod, status) && created !== undefined && now.getTime() - created.getTime() >= STUCK_MS) {
    return failed(`has not got its init container ${RESTORE_CONTAINER} going in ${Math.round((now.getTime() - created.getTime()) / 60_000)} minutes (${description}); its data is not being restored: kubectl describe pod -n ${op.namespace} ${op.pod} (docs/velero-restore.md, "Messages and what to do")`);
  }
  return { completed: false, description, ...at };
}

/** Never run, and stuck: not scheduled, or the kubelet cannot start the init container. Velero's restore-wait and other init containers first are not stuck. */
function neverStarted(pod: V1Pod, status: V1ContainerStatus | undefined): boolean {
  if (status?.restartCount || status?.state?.running || status?.state?.terminated || status?.lastState?.terminated) return false;
  if (CANNOT_START.has(status?.state?.waiting?.reason ?? '')) return true;
  return Boolean(pod.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'False'));
}

/** Runs that ended in failure: the restarts (each follows a failed run) and the current run if it failed. */
function failedRuns(status: V1ContainerStatus | undefined): number {
  if (!status) return 0;
  const endedNow = status.state?.terminated ?? (status.state?.waiting ? status.lastState?.terminated : undefined);
  return status.restartCount + (endedNow && endedNow.exitCode !== 0 ? 1 : 0);
}

/** The failed run's own reason: the last line of its termination message (its log's end, FallbackToLogsOnError), else the kubelet's. */
function lastFailure(status: V1ContainerStatus | undefined): string | undefined {
  const ended = status?.state?.terminated ?? status?.lastState?.terminated;
  if (!ended || ended.exitCode === 0) return undefined;
  const line = lastLine(ended.message);
  return line ?? `exit code ${ended.exitCode}${ended.reason ? ` (${ended.reason})` : ''}`;
}

function describeWait(pod: V1Pod, status: V1ContainerStatus | undefined, runs: number, why: string | undefined, logLine: string | undefined): string {
  const retry = runs > 0 ? `failed ${runs} time(s) (at ${MAX_FAILED_RUNS} this restore fails)${why ? `, last: ${why}` : ''}; ` : '';
  if (status?.state?.running) return `${retry}${RESTORE_CONTAINER} running${logLine ? `: ${logLine}` : ''}`;
  const waiting = status?.state?.waiting;
  if (waiting?.reason && waiting.reason !== 'PodInitializing') return `${retry}${RESTORE_CONTAINER} waiting: ${waiting.reason}${waiting.message ? ` (${waiting.message})` : ''}`;
  const unscheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  if (unscheduled) return `pod not scheduled yet${unscheduled.message ? `: ${unscheduled.message}` : ''}`;
  // Velero's own restore-wait and other init containers before ours run first.
  return `${retry}pod ${pod.status?.phase ?? 'Pending'}: ${RESTORE_CONTAINER} has not started yet`;
}

function lastLine(text: string | undefined): string | undefined {
  return text?.split('\n').map((l) => l.trim()).filter(Boolean).at(-1);
}

/** A quoted line, shortened; redacted with the rest (its lines are scrubbed already: this is the second lock). */
function clip(text: string | undefined): string | undefined {
  return text !== undefined && text.length > MAX_QUOTE ? `${text.slice(0, MAX_QUOTE - 1)}…` : text;
}
