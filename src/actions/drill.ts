/**
 * A restore drill through Velero (docs/velero-restore.md, Drills): restore a backup into another
 * namespace and report. The plugin's restore action sees the namespace mapping, moves each Victoria
 * pod's hostPath away from production and adds a post-restore hook (`companion verify --expect
 * COUNTS`) that fails the restore when the restored database does not hold the counts recorded at
 * backup time. So a drill only picks the backup, creates the Restore, waits for it and reports: it
 * passed when the Restore is Completed with no errors (every verify hook passed).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { chooseBackup } from './drill-backup.js';
import { drillPods, drillProblems, TERMINAL_PHASES as TERMINAL, type DrillReport } from './drill-report.js';
import { KIND_LABEL, PLUGIN_DOMAIN } from './names.js';
import type { KubeClient } from '../kube/client.js';
import { KubeError } from '../kube/errors.js';
import type { VeleroRestore } from '../kube/velero-objects.js';

export const DRILL_LABEL = `${PLUGIN_DOMAIN}/drill`;
/** Velero's label on every object a Restore creates (not on namespaces it creates for them). */
const RESTORE_NAME_LABEL = 'velero.io/restore-name';
/** Velero uses the restore name as a label value (velero.io/restore-name): 63 characters at most. */
const MAX_NAME = 63;

/** What to drill, from where, into where, and how long to wait. */
export interface DrillRequest {
  namespace: string;
  drillNamespace: string;
  veleroNs: string;
  backup: string | undefined;
  schedule: string | undefined;
  /** The timeout as the user gave it, for the messages; `timeoutMs` is its value. */
  timeout: string;
  timeoutMs: number;
  /** Delete the drill namespace after the report, and one an earlier drill left before. */
  cleanup: boolean;
}

export interface DrillRun {
  /** Poll interval of the Restore's status and of a namespace's deletion. */
  pollMs: number;
  now: () => Date;
  /** Told what the drill is doing while it waits (the CLI prints it on stderr). */
  note: (text: string) => void;
}

/** Runs a drill: picks the backup, clears an earlier drill's namespace (--cleanup), restores, waits, reports, cleans up. */
export async function runDrill(kube: KubeClient, a: DrillRequest, run: DrillRun): Promise<DrillReport> {
  const { pollMs, now } = run;
  const backup = await chooseBackup(kube, a.veleroNs, a.namespace, a.backup, a.schedule);
  const earlier = await clearEarlierDrill(kube, a, pollMs, now);
  if (earlier) run.note(earlier);

  const started = now();
  const restoreName = drillRestoreName(backup, started);
  const created = drillRestore(a, backup, restoreName);
  await kube.createRestore(a.veleroNs, created);
  run.note(`restore ${restoreName} of backup ${backup} created in namespace ${a.veleroNs}: ${a.namespace} → ${a.drillNamespace}; waiting up to ${a.timeout}`);

  const current = await waitForRestore(kube, created, started.getTime() + a.timeoutMs, { pollMs, now, note: run.note });
  const report = await drillReport(kube, a, { backup, restoreName, current, started, now });
  report.cleanup.earlier = earlier;
  if (a.cleanup) await cleanUp(kube, report);
  return report;
}

/** `drill-<backup>-<UTC yyyymmddhhmmss>`, shortened to a valid label value. */
export function drillRestoreName(backup: string, at: Date): string {
  const stamp = at.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const room = MAX_NAME - 'drill-'.length - 1 - stamp.length;
  const part = backup.slice(0, room).replace(/[^a-z0-9-]/g, '-').replace(/-+$/, '');
  return `drill-${part}-${stamp}`;
}

async function namespaceExists(kube: KubeClient, name: string): Promise<boolean> {
  try {
    await kube.getNamespace(name);
    return true;
  } catch (err) {
    if (err instanceof KubeError && err.code === 'NotFound') return false;
    throw err;
  }
}

/** The drill's Restore: the backup's namespace mapped to the drill namespace, labelled as a drill. */
function drillRestore(a: DrillRequest, backup: string, restoreName: string): VeleroRestore {
  return {
    apiVersion: 'velero.io/v1',
    kind: 'Restore',
    metadata: { name: restoreName, namespace: a.veleroNs, labels: { [DRILL_LABEL]: 'true' } },
    spec: {
      backupName: backup,
      includedNamespaces: [a.namespace],
      namespaceMapping: { [a.namespace]: a.drillNamespace },
      // Only the Victoria objects (and, through the pod restore action, the Secrets, ConfigMaps and
      // ServiceAccount their pods name): any other pod of the namespace would come back in the drill
      // namespace on its own production hostPath, and its alerts and writes would go to production.
      labelSelector: { matchExpressions: [{ key: KIND_LABEL, operator: 'Exists' }] },
      // The restore action's operations last until each pod's data is downloaded (restore-operation.ts):
      // Velero's default (4 h) would fail a long drill's Restore before the drill's own timeout.
      itemOperationTimeout: `${Math.ceil(a.timeoutMs / 1000)}s`,
    },
  };
}

/**
 * The Restore once it has ended, or as the last poll before the deadline saw it: no poll starts
 * that would end after the deadline, so the wait is bounded by --timeout (plus the last request)
 * however long Velero takes.
 */
async function waitForRestore(kube: KubeClient, created: VeleroRestore, deadline: number, run: DrillRun): Promise<VeleroRestore> {
  const { pollMs, now } = run;
  const { name = '', namespace: veleroNs = '' } = created.metadata;
  // As created, without a phase: the first poll comes at once.
  let current = created;
  let failing: KubeError | undefined;
  const told = { text: '', changedAt: 0, notedAt: 0 };
  for (let first = true; !decided(current) && (first || now().getTime() + pollMs <= deadline); first = false) {
    if (!first) await sleep(pollMs);
    try {
      current = await kube.getRestore(veleroNs, name);
      tellProgress(current, told, run);
      failing = undefined;
    } catch (err) {
      // A drill waits for up to an hour: one slow or failed answer of the API server in that time
      // (an upgrade, a leader election) must not end it without its report and clean-up. What
      // will not pass (NotFound, Forbidden) fails it at once; trouble that lasts, at the deadline.
      if (!(err instanceof KubeError) || !TRANSIENT.has(err.code)) throw err;
      failing = err;
    }
  }
  if (failing) throw failing;
  return current;
}

/**
 * The drill's outcome is known: the Restore has ended, or the Victoria data of a pod was not
 * restored. Velero then still waits for that pod's verify hook, which waits for a database that
 * never starts (up to the hook's wait-timeout, hours): the drill has failed already.
 */
function decided(restore: VeleroRestore): boolean {
  return TERMINAL.has(restore.status?.phase ?? '') || Number(restore.status?.restoreItemOperationsFailed ?? 0) > 0;
}

/** How often a drill that waits says so when nothing changed: a drill can wait an hour. */
const QUIET_NOTE_MS = 60_000;

/**
 * The Restore's state as the drill waits: on every change, and once a minute otherwise. Velero
 * counts the restore action's operations (restore-operation.ts), one per pod whose data downloads.
 */
function tellProgress(restore: VeleroRestore, told: { text: string; changedAt: number; notedAt: number }, run: DrillRun): void {
  const status = restore.status ?? {};
  const attempted = Number(status.restoreItemOperationsAttempted ?? 0);
  const failed = Number(status.restoreItemOperationsFailed ?? 0);
  const data = attempted > 0 ? `; Victoria data of ${Number(status.restoreItemOperationsCompleted ?? 0)} of ${attempted} pod(s) restored${failed ? `, ${failed} failed` : ''}` : '';
  const text = `restore ${restore.metadata.name}: ${status.phase ?? 'New'}${data}`;
  const at = run.now().getTime();
  if (text !== told.text) {
    run.note(text);
    Object.assign(told, { text, changedAt: at, notedAt: at });
  } else if (at - told.notedAt >= QUIET_NOTE_MS) {
    run.note(`${text} (for ${Math.round((at - told.changedAt) / 60_000)} min)`);
    told.notedAt = at;
  }
}

/** API server trouble that may pass: a timeout, no connection, a 5xx. */
const TRANSIENT: ReadonlySet<string> = new Set(['Timeout', 'Unreachable', 'Failed']);

/** The report of a Restore as waitForRestore left it, with its pods as they are (those of a timed-out one say what holds it up). */
async function drillReport(
  kube: KubeClient,
  a: DrillRequest,
  run: { backup: string; restoreName: string; current: VeleroRestore; started: Date; now: () => Date },
): Promise<DrillReport> {
  const { restoreName, started } = run;
  const status = run.current.status ?? {};
  const phase = status.phase ?? 'New';
  const timedOut = !decided(run.current);
  const pods = await drillPods(kube, a.namespace, a.drillNamespace);
  const operationsFailed = Number(status.restoreItemOperationsFailed ?? 0);
  const hooksAttempted = Number((status.hookStatus as { hooksAttempted?: unknown } | undefined)?.hooksAttempted ?? 0);
  const problems = drillProblems({ restore: restoreName, drillNamespace: a.drillNamespace, phase, timedOut, errors: status.errors ?? 0, operationsFailed, hooksAttempted, pods }, a.timeout);
  return {
    passed: problems.length === 0,
    backup: run.backup,
    restore: restoreName,
    veleroNamespace: a.veleroNs,
    namespace: a.namespace,
    drillNamespace: a.drillNamespace,
    phase,
    timedOut,
    durationSeconds: Math.round((run.now().getTime() - started.getTime()) / 100) / 10,
    warnings: status.warnings ?? 0,
    errors: status.errors ?? 0,
    operationsFailed,
    hooksAttempted,
    failureReason: status.failureReason ?? null,
    validationErrors: status.validationErrors ?? [],
    pods,
    problems,
    cleanup: { requested: a.cleanup, deleted: false, note: null, earlier: null },
  };
}

/** How long --cleanup waits for an earlier drill's namespace to be gone (its pods end first). */
const NAMESPACE_DELETION_MS = 5 * 60_000;

/**
 * The drill namespace must not exist: Velero would skip the objects already there, and the drill
 * would prove nothing. One that an earlier drill left (it timed out, or ran without --cleanup)
 * would otherwise fail every later drill, a scheduled one included, until someone deletes it. With
 * --cleanup it is deleted first, but only when it is provably a drill's: its Victoria pods carry
 * the name of one Restore (Velero labels every object it restores with it, though not the
 * namespaces it creates) that carries our drill label and maps into it, and that Restore has ended
 * (Velero cannot stop a running one, and would create the namespace again). Returns what was done.
 */
async function clearEarlierDrill(kube: KubeClient, a: DrillRequest, pollMs: number, now: () => Date): Promise<string | null> {
  const ns = a.drillNamespace;
  let terminating: boolean;
  try {
    terminating = Boolean((await kube.getNamespace(ns)).metadata?.deletionTimestamp);
  } catch (err) {
    if (err instanceof KubeError && err.code === 'NotFound') return null;
    throw err;
  }
  const refuse = (why: string) =>
    new Error(
      `namespace ${ns} exists already (${why}): Velero would skip the objects already there, so the drill would prove nothing; ` +
        `delete it (kubectl delete namespace ${ns}) or choose --drill-namespace`,
    );
  const restores = new Set((await kube.listPods(ns, KIND_LABEL)).flatMap((p) => p.metadata?.labels?.[RESTORE_NAME_LABEL] ?? []));
  const [earlier] = restores;
  if (!earlier || restores.size > 1) {
    throw refuse(earlier ? `its Victoria pods come from several restores: ${[...restores].join(', ')}` : 'no Victoria pod in it was restored by Velero');
  }
  const restore = await kube.getRestore(a.veleroNs, earlier).catch((err: unknown) => {
    if (err instanceof KubeError && err.code === 'NotFound') return undefined;
    throw err;
  });
  const isDrill = restore?.metadata?.labels?.[DRILL_LABEL] === 'true' && restore.spec?.namespaceMapping?.[a.namespace] === ns;
  if (!restore || !isDrill) throw refuse(`its Victoria pods come from Restore ${earlier}, ${restore ? 'which is not a drill of this namespace' : 'which no longer exists'}`);
  const phase = restore.status?.phase ?? 'New';
  if (!a.cleanup) throw refuse(`left by drill ${earlier}, ${phase}; --cleanup deletes it once that Restore has ended`);
  if (!TERMINAL.has(phase)) throw refuse(`left by drill ${earlier}, which is still ${phase}: run the drill again once it has ended (velero restore describe ${earlier})`);
  if (!terminating) {
    await kube.deleteNamespace(ns).catch((err: unknown) => {
      // 409: someone else's deletion got there first; the wait below is all that is left to do.
      if (!(err instanceof KubeError && err.code === 'AlreadyExists')) throw err;
    });
  }
  const deadline = now().getTime() + NAMESPACE_DELETION_MS;
  while (await namespaceExists(kube, ns)) {
    if (now().getTime() + pollMs > deadline) throw new Error(`namespace ${ns}, left by drill ${earlier}, was deleted but is still there after ${NAMESPACE_DELETION_MS / 60_000} minutes: kubectl get namespace ${ns} -o yaml shows what holds it`);
    await sleep(pollMs);
  }
  return `deleted namespace ${ns}, left by drill ${earlier} (${phase}); remove that drill's hostPath directories on the node`;
}

/**
 * --cleanup, into the report: only the namespace this drill created (it did not exist before), never
 * production, and only after a drill that passed: a failed drill's pods hold the evidence (the
 * restore init container's log, the database's, the verify hook's), which the next drill with
 * --cleanup deletes once this Restore has ended (clearEarlierDrill).
 */
async function cleanUp(kube: KubeClient, report: DrillReport): Promise<void> {
  const { drillNamespace } = report;
  if (report.timedOut) {
    report.cleanup.note = `not done: the Restore is still running; delete namespace ${drillNamespace} once it has ended`;
  } else if (!report.passed) {
    report.cleanup.note =
      `kept: the drill failed, and the logs of its pods in ${drillNamespace} (init container victoria-restore, the database, the companion) show why; ` +
      'the next drill with --cleanup deletes it, or delete it yourself once read';
  } else if (drillNamespace === report.namespace) {
    // The usage check refuses this already; kept beside the deletion, so that no later change
    // of the arguments' handling can delete production.
    report.cleanup.note = `refused: ${drillNamespace} is the production namespace`;
  } else if (!(await namespaceExists(kube, drillNamespace))) {
    report.cleanup.note = `namespace ${drillNamespace} does not exist: nothing to delete`;
  } else {
    await kube.deleteNamespace(drillNamespace);
    report.cleanup.deleted = true;
    report.cleanup.note = `namespace ${drillNamespace} deleted; remove the drill's hostPath directories on the node (${
      report.pods.map((p) => p.hostPath).filter(Boolean).join(', ') || 'none'
    })`;
  }
}
