/**
 * What a drill reports: the restored Victoria pods beside production (where their data went, what
 * their verify hook expects), and why the drill did not pass.
 */
import { COUNTS_LABEL, KIND_LABEL } from './names.js';
import { RESTORE_HOOK } from './drill-spec.js';
import { findDataVolume, type Pod } from './pod-spec.js';
import type { KubeClient } from '../kube/client.js';

const DEFAULT_COMPANION = 'victoria-companion';
/** The phases in which Velero has finished with a Restore. */
export const TERMINAL_PHASES: ReadonlySet<string> = new Set(['Completed', 'PartiallyFailed', 'Failed', 'FailedValidation']);

export interface DrillPod {
  name: string;
  kind: string | null;
  /** The hostPath of the data volume in the drill. */
  hostPath: string | null;
  /**
   * The production data hostPath it is compared with: the drill's own path when a production
   * Victoria pod uses it, else the production pod of the same name's, else null.
   */
  productionHostPath: string | null;
  /** The counts the verify hook expects (its `--expect`), null without a hook. */
  expect: Record<string, number> | null;
  /** Its phase, and what holds it up: a container that waits, failed, or runs unready (podState). */
  state: string;
}

export interface DrillReport {
  passed: boolean;
  backup: string;
  restore: string;
  veleroNamespace: string;
  namespace: string;
  drillNamespace: string;
  phase: string;
  timedOut: boolean;
  durationSeconds: number;
  warnings: number;
  errors: number;
  /** The restore action's operations that failed: pods whose Victoria data was not restored (Velero's restoreItemOperationsFailed). */
  operationsFailed: number;
  /** The post-restore hooks Velero ran (status.hookStatus.hooksAttempted; 0 when it reports none). */
  hooksAttempted: number;
  failureReason: string | null;
  validationErrors: string[];
  pods: DrillPod[];
  /** Why the drill did not pass (empty when it passed). */
  problems: string[];
  cleanup: {
    requested: boolean;
    deleted: boolean;
    note: string | null;
    /** What --cleanup did before the drill: the namespace an earlier drill left, deleted. */
    earlier: string | null;
  };
}

function dataHostPath(pod: Pod, companion: string): string | null {
  try {
    return findDataVolume(pod, companion, pod.metadata?.name ?? '').volume.hostPath?.path ?? null;
  } catch {
    return null;
  }
}

interface ContainerStatus {
  name: string;
  ready?: boolean;
  state?: { waiting?: { reason?: string; message?: string }; running?: object; terminated?: Terminated };
  lastState?: { terminated?: Terminated };
}
interface Terminated {
  exitCode?: number;
  reason?: string;
  message?: string;
}
interface PodStatus {
  phase?: string;
  conditions?: Array<{ type?: string; status?: string; reason?: string; message?: string }>;
  initContainerStatuses?: ContainerStatus[];
  containerStatuses?: ContainerStatus[];
}

/** A container's message, on one line and short: the restore init container's can be 4 KiB. */
const clip = (text: string): string => {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
};

/** What is wrong with a container, if anything: waiting (with its last exit), failed, or running unready. */
function containerTrouble(c: ContainerStatus, init: boolean): string | undefined {
  const last = c.lastState?.terminated;
  const lastExit = last ? `; last exit ${last.exitCode ?? '?'}${last.message ? `: ${clip(last.message)}` : last.reason ? ` (${last.reason})` : ''}` : '';
  const { waiting, running, terminated } = c.state ?? {};
  if (waiting) return `waiting: ${waiting.reason ?? 'unknown reason'}${waiting.message ? ` (${clip(waiting.message)})` : ''}${lastExit}`;
  if (terminated) {
    if (init && terminated.exitCode === 0) return undefined;
    return `exited ${terminated.exitCode ?? '?'}${terminated.reason ? ` (${terminated.reason})` : ''}${terminated.message ? `: ${clip(terminated.message)}` : ''}`;
  }
  // An init container still running is the restore downloading; an app container unready is the database starting.
  if (running && (init || c.ready === false)) return init ? 'running' : 'running, not ready';
  return undefined;
}

/**
 * A restored pod's state in a line: its phase, and the first thing that holds it up (not
 * scheduled; an init container, the restore's, that waits, failed or still runs; a container that
 * waits or is not ready), with the container's own message. What a drill that timed out reports.
 */
export function podState(pod: Pod & { status?: PodStatus }): string {
  const status = pod.status ?? {};
  const phase = status.phase ?? 'Pending';
  const unscheduled = status.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  if (unscheduled) return `${phase}: not scheduled: ${clip(unscheduled.message ?? unscheduled.reason ?? 'no reason given')}`;
  for (const [what, list, init] of [['init container', status.initContainerStatuses, true], ['container', status.containerStatuses, false]] as const) {
    for (const c of list ?? []) {
      const trouble = containerTrouble(c, init);
      if (trouble) return `${phase}: ${what} ${c.name} ${trouble}`;
    }
  }
  return phase;
}

/** The `--expect` counts of the drill's verify hook annotation, null when the pod has none. */
function expectedCounts(annotations: Record<string, string> | undefined): Record<string, number> | null {
  const command = annotations?.[RESTORE_HOOK.command];
  if (!command) return null;
  try {
    const args = JSON.parse(command) as unknown;
    if (!Array.isArray(args)) return null;
    const i = args.indexOf('--expect');
    return i >= 0 && typeof args[i + 1] === 'string' ? (JSON.parse(args[i + 1] as string) as Record<string, number>) : null;
  } catch {
    return null;
  }
}

/**
 * The restored Victoria pods of the drill, each beside production: the production Victoria pod of
 * the same name, or any production Victoria pod on the same hostPath. A Deployment's pod is named
 * differently in production by now (every restart names it anew), so the name alone would miss a
 * drill pod on production's data.
 */
export async function drillPods(kube: KubeClient, namespace: string, drillNamespace: string): Promise<DrillPod[]> {
  const pods = (await kube.listPods(drillNamespace, KIND_LABEL)) as unknown as Pod[];
  const production = (await kube.listPods(namespace, KIND_LABEL)) as unknown as Pod[];
  const out: DrillPod[] = [];
  for (const pod of pods.sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))) {
    const name = pod.metadata?.name ?? '';
    const annotations = (pod.metadata as undefined | { annotations?: Record<string, string> })?.annotations;
    const companion = annotations?.[RESTORE_HOOK.container] ?? DEFAULT_COMPANION;
    const hostPath = dataHostPath(pod, companion);
    const productionPaths = production.map((p) => ({ name: p.metadata?.name, path: dataHostPath(p, companion) }));
    const clash = hostPath !== null && productionPaths.some((p) => p.path === hostPath);
    out.push({
      name,
      kind: pod.metadata?.labels?.[KIND_LABEL] ?? null,
      hostPath,
      productionHostPath: clash ? hostPath : (productionPaths.find((p) => p.name === name)?.path ?? null),
      expect: expectedCounts(annotations),
      state: podState(pod),
    });
  }
  return out;
}

/**
 * Why the drill did not pass. Completed with no errors is not enough on its own: a restored pod
 * without the verify hook was not checked against the backup's counts, and one on the production
 * hostPath endangers production.
 */
export function drillProblems(
  r: Pick<DrillReport, 'restore' | 'drillNamespace' | 'phase' | 'timedOut' | 'errors' | 'operationsFailed' | 'hooksAttempted' | 'pods'>,
  timeout: string,
): string[] {
  const { restore, drillNamespace, phase } = r;
  const problems: string[] = [];
  if (r.operationsFailed > 0) {
    // Decided before Velero ends the Restore: it waits for the verify hooks of pods whose data never came.
    problems.push(`the Victoria data of ${r.operationsFailed} pod(s) was not restored (Restore ${phase}): velero restore describe ${restore} --details names each pod and why`);
  }
  // The drill stopped on that failure while Velero still holds the Restore (drill.ts, decided).
  const held = r.operationsFailed > 0 && !TERMINAL_PHASES.has(phase);
  if (held) {
    problems.push(
      `Velero holds ${restore} in ${phase} while the verify hook of a pod without its data waits for a database that does not start (up to the hook's wait-timeout, restorePlanExpirySeconds + 10 min), ` +
        `and finishes no other Restore meanwhile: once the pods' logs are read, delete namespace ${drillNamespace}, which ends the wait`,
    );
  } else if (r.timedOut) {
    problems.push(`the Restore was still ${phase} after ${timeout}: see velero restore describe ${restore}`);
  } else if (phase !== 'Completed') {
    problems.push(`the Restore ended ${phase}: see velero restore describe ${restore} --details and velero restore logs ${restore}`);
  }
  // What holds a Restore up that has not ended, most often: a restore init container that fails or is still downloading.
  if (held || r.timedOut) for (const p of r.pods) if (p.state !== 'Running') problems.push(`pod ${drillNamespace}/${p.name}: ${p.state}`);
  // A pod whose Victoria data was not restored is one of them (its operation's error).
  if (r.errors > 0) problems.push(`${r.errors} error(s) in the Restore: velero restore describe ${restore} --details lists them`);
  const hooked = r.pods.filter((p) => p.expect).length;
  if (phase === 'Completed' && r.hooksAttempted < hooked) {
    // Velero tracks hooks in memory: a server restart during the restore forgets them, and the Restore completes without them.
    problems.push(
      `Velero ran ${r.hooksAttempted} of the ${hooked} verify hook(s) (status.hookStatus of ${restore}), so not every restored database was checked against the backup's counts: ` +
        'a restart of the Velero server during the restore drops the hooks it waits for; run the drill again',
    );
  }
  if (!r.timedOut && r.pods.length === 0) problems.push(`no Victoria pod (label ${KIND_LABEL}) in namespace ${drillNamespace}: nothing was verified; does the backup hold the Victoria pods?`);
  for (const p of r.pods) {
    if (!p.expect) {
      // Two causes, which only the restore log tells apart: a backup without counts, whose drill can
      // check checksums only, or a plugin that did not act on the restore at all.
      problems.push(
        `pod ${drillNamespace}/${p.name} has no verify hook, so its data was not checked against the backup's counts: ` +
          `either the backup holds no counts (labelled ${COUNTS_LABEL}=false, or its count failed; the restore log says "holds no counts") and only its checksums were checked, drill a counted backup; ` +
          `or the plugin did not treat the restore as a drill (is it installed in Velero? velero restore logs ${restore})`,
      );
    }
    if (p.hostPath && p.hostPath === p.productionHostPath) problems.push(`pod ${drillNamespace}/${p.name} uses the production hostPath ${p.hostPath}: stop it now`);
  }
  return problems;
}
