/**
 * `drill`: proves a backup by restoring it through Velero into another namespace (docs/velero-restore.md,
 * Drills). The plugin's restore action sees the namespace mapping, moves each Victoria pod's hostPath
 * away from production and adds a post-restore hook (`companion verify --expect COUNTS`) that fails
 * the restore when the restored database does not hold the counts recorded at backup time. So this
 * command only picks the backup, creates the Restore, waits for it and reports: the drill passed when
 * the Restore is Completed with no errors (every verify hook passed).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { durationFlag } from '../duration-flag.js';
import { parseFlags } from '../../common/parse-flags.js';
import { COUNTS_LABEL, KIND_LABEL, PLUGIN_DOMAIN } from '../../actions/names.js';
import { RESTORE_HOOK, findDataVolume, type Pod } from '../../actions/restore-spec.js';
import { KubeClient, type LoadKubeConfigOptions } from '../../kube/client.js';
import { KubeError } from '../../kube/errors.js';
import type { VeleroBackup, VeleroRestore } from '../../kube/velero-objects.js';
import { UsageError } from '../../common/usage-error.js';

export const DRILL_USAGE = `velero-plugin-victoria drill [--backup NAME | --schedule NAME] --namespace NS [--drill-namespace NS-drill]
                             [--velero-namespace velero] [--timeout 30m] [--cleanup] [--kubeconfig F] [--context C] [--json]

Restores a Velero backup of namespace NS into the drill namespace (default NS-drill) with a Velero
Restore (namespace mapping NS → drill namespace), waits for it and reports. The plugin moves each
restored Victoria pod's data to a hostPath beside the production one and verifies the restored
counts in a post-restore hook: the drill passes when the Restore ends Completed with no errors.

  --backup NAME            the backup to restore (Completed or PartiallyFailed); default: the newest
                           Completed backup that includes NS and was counted (not labelled
                           velero-plugin-victoria.io/counts=false)
  --schedule NAME          only backups of this Velero Schedule (label velero.io/schedule-name)
  --velero-namespace NS    where Velero runs (default velero)
  --timeout DURATION       how long to wait for the Restore, e.g. 30m, 1h30m (default 30m)
  --cleanup                delete the drill namespace after the report (never NS itself); and
                           before the drill, one an earlier drill left (timed out, or run without
                           --cleanup) once that drill's Restore has ended
  --kubeconfig FILE        default: KUBECONFIG, the pod's service account, ~/.kube/config
  --context NAME           a kubeconfig context other than the current one
  --json                   print one JSON object

Exit status: 0 the drill passed, 1 it failed (or could not run), 2 usage error.`;

export const DRILL_LABEL = `${PLUGIN_DOMAIN}/drill`;
const SCHEDULE_LABEL = 'velero.io/schedule-name';
/** Velero's label on every object a Restore creates (not on namespaces it creates for them). */
const RESTORE_NAME_LABEL = 'velero.io/restore-name';
const DEFAULT_COMPANION = 'victoria-companion';
const TERMINAL = new Set(['Completed', 'PartiallyFailed', 'Failed', 'FailedValidation']);
/** Velero uses the restore name as a label value (velero.io/restore-name): 63 characters at most. */
const MAX_NAME = 63;

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

export interface DrillOptions {
  /** Poll interval of the Restore's status (default 5000 ms; tests shorten it). */
  pollMs?: number;
  now?: () => Date;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
}

/** Go-style durations as kubectl and Velero take them: 30m, 1h30m, 90s, 500ms. */
export function parseTimeout(text: string): number {
  return durationFlag('timeout', text, '30m, 1h30m or 90s');
}

/** `drill-<backup>-<UTC yyyymmddhhmmss>`, shortened to a valid label value. */
export function drillRestoreName(backup: string, at: Date): string {
  const stamp = at.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const room = MAX_NAME - 'drill-'.length - 1 - stamp.length;
  const part = backup.slice(0, room).replace(/[^a-z0-9-]/g, '-').replace(/-+$/, '');
  return `drill-${part}-${stamp}`;
}

/** Whether a Backup covers the namespace: listed (or `*`, or no list at all) and not excluded. */
function backupIncludes(backup: VeleroBackup, namespace: string): boolean {
  const spec = backup.spec as { includedNamespaces?: string[]; excludedNamespaces?: string[] };
  const included = spec.includedNamespaces ?? [];
  const excluded = spec.excludedNamespaces ?? [];
  if (excluded.includes(namespace) || excluded.includes('*')) return false;
  return included.length === 0 || included.includes('*') || included.includes(namespace);
}

const statusOf = (b: VeleroBackup) => (b.status ?? {}) as { phase?: string; completionTimestamp?: string };

async function chooseBackup(kube: KubeClient, veleroNs: string, namespace: string, named: string | undefined, schedule: string | undefined): Promise<string> {
  if (named) {
    let backup: VeleroBackup;
    try {
      backup = await kube.getBackup(veleroNs, named);
    } catch (err) {
      if (err instanceof KubeError && err.code === 'NotFound') {
        throw new Error(`backup "${named}" not found in namespace ${veleroNs}: check the name (velero backup get) or --velero-namespace`);
      }
      throw err;
    }
    const phase = statusOf(backup).phase ?? '(none)';
    if (phase !== 'Completed' && phase !== 'PartiallyFailed') {
      throw new Error(`backup "${named}" in namespace ${veleroNs} is ${phase}, not Completed or PartiallyFailed: choose a finished backup (velero backup get)`);
    }
    if (!backupIncludes(backup, namespace)) {
      throw new Error(`backup "${named}" in namespace ${veleroNs} does not include namespace ${namespace}: choose a backup of ${namespace}, or fix --namespace`);
    }
    return named;
  }
  const all = await kube.listBackups(veleroNs, schedule ? `${SCHEDULE_LABEL}=${schedule}` : undefined);
  const candidates = all
    // A backup that was not counted could only be checked for checksums: the drill picks a counted one.
    .filter((b) => statusOf(b).phase === 'Completed' && b.metadata.name && backupIncludes(b, namespace) && b.metadata.labels?.[COUNTS_LABEL] !== 'false')
    .sort((a, b) => (statusOf(b).completionTimestamp ?? '').localeCompare(statusOf(a).completionTimestamp ?? ''));
  const newest = candidates[0];
  if (!newest) {
    const of = schedule ? ` of schedule ${schedule}` : '';
    throw new Error(
      `no Completed backup${of} that includes namespace ${namespace} and was counted (not labelled ${COUNTS_LABEL}=false) in namespace ${veleroNs} (${all.length} backup${all.length === 1 ? '' : 's'}${of} there): ` +
        `check velero backup get${schedule ? ` -l ${SCHEDULE_LABEL}=${schedule}` : ''}, --namespace and --velero-namespace, or name one with --backup`,
    );
  }
  return newest.metadata.name!;
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

function dataHostPath(pod: Pod, companion: string): string | null {
  try {
    return findDataVolume(pod, companion, pod.metadata?.name ?? '').volume.hostPath?.path ?? null;
  } catch {
    return null;
  }
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
async function drillPods(kube: KubeClient, namespace: string, drillNamespace: string): Promise<DrillPod[]> {
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
    });
  }
  return out;
}

function formatReport(r: DrillReport): string {
  const lines = [
    `drill ${r.passed ? 'PASSED' : 'FAILED'}`,
    `  backup:          ${r.backup}`,
    `  restore:         ${r.restore} (namespace ${r.veleroNamespace})`,
    `  drill namespace: ${r.drillNamespace} (from ${r.namespace})`,
    `  phase:           ${r.phase}${r.timedOut ? ' (timed out waiting)' : ''}`,
    `  duration:        ${r.durationSeconds} s`,
    `  warnings:        ${r.warnings}`,
    `  errors:          ${r.errors}`,
  ];
  if (r.failureReason) lines.push(`  failure reason:  ${r.failureReason}`);
  for (const v of r.validationErrors) lines.push(`  validation:      ${v}`);
  lines.push(`  Victoria pods restored: ${r.pods.length}`);
  for (const p of r.pods) {
    const where = p.hostPath ? `hostPath ${p.hostPath}` : 'no hostPath data volume';
    const prod = p.productionHostPath ? ` (production: ${p.productionHostPath}${p.productionHostPath === p.hostPath ? ', THE SAME' : ', untouched'})` : '';
    lines.push(`    ${p.name} (${p.kind ?? '?'}): ${where}${prod}; expects ${p.expect ? JSON.stringify(p.expect) : 'nothing (no verify hook)'}`);
  }
  lines.push(
    '  The restored counts are checked by the post-restore hook `companion verify` in each pod: a mismatch fails the hook and the Restore.',
    `  Pass = Restore Completed with no errors${r.passed ? '' : `; not so here: ${r.problems.join('; ')}`}.`,
  );
  if (r.cleanup.earlier) lines.push(`  before:  ${r.cleanup.earlier}`);
  if (r.cleanup.requested) lines.push(`  cleanup: ${r.cleanup.note}`);
  else lines.push(`  Clean up promptly: kubectl delete namespace ${r.drillNamespace} (or run with --cleanup), then remove the drill's hostPath directories on the node.`);
  return `${lines.join('\n')}\n`;
}

/** The command line, checked: what to drill, from where, into where, and how long to wait. */
interface DrillArgs {
  namespace: string;
  drillNamespace: string;
  veleroNs: string;
  backup: string | undefined;
  schedule: string | undefined;
  /** --timeout as given, for the messages; `timeoutMs` is its value. */
  timeout: string;
  timeoutMs: number;
  cleanup: boolean;
  json: boolean;
  kube: LoadKubeConfigOptions;
}

export async function drillCommand(args: string[], options: DrillOptions = {}): Promise<number> {
  const stdout = options.stdout ?? ((t: string) => void process.stdout.write(t));
  const stderr = options.stderr ?? ((t: string) => void process.stderr.write(t));
  const now = options.now ?? (() => new Date());
  const pollMs = options.pollMs ?? 5000;

  let a: DrillArgs;
  try {
    a = parseDrillArgs(args);
  } catch (err) {
    stderr(`velero-plugin-victoria drill: ${(err as Error).message}\n\n${DRILL_USAGE}\n`);
    return 2;
  }
  const kube = KubeClient.load(a.kube);

  const backup = await chooseBackup(kube, a.veleroNs, a.namespace, a.backup, a.schedule);
  const earlier = await clearEarlierDrill(kube, a, pollMs, now);
  if (earlier && !a.json) stderr(`drill: ${earlier}\n`);

  const started = now();
  const restoreName = drillRestoreName(backup, started);
  await kube.createRestore(a.veleroNs, drillRestore(a, backup, restoreName));
  if (!a.json) stderr(`drill: restore ${restoreName} of backup ${backup} created in namespace ${a.veleroNs}: ${a.namespace} → ${a.drillNamespace}; waiting up to ${a.timeout}\n`);

  const current = await waitForRestore(kube, a.veleroNs, restoreName, started.getTime() + a.timeoutMs, pollMs, now);
  const report = await drillReport(kube, a, { backup, restoreName, current, started, now });
  report.cleanup.earlier = earlier;
  if (a.cleanup) await cleanUp(kube, report);

  stdout(a.json ? `${JSON.stringify(report)}\n` : formatReport(report));
  return report.passed ? 0 : 1;
}

/** The flags, with the mistakes refused before anything is asked of the cluster (UsageError: exit status 2). */
function parseDrillArgs(args: string[]): DrillArgs {
  const { values } = parseFlags({
    args,
    options: {
      backup: { type: 'string' },
      schedule: { type: 'string' },
      namespace: { type: 'string' },
      'drill-namespace': { type: 'string' },
      'velero-namespace': { type: 'string', default: 'velero' },
      timeout: { type: 'string', default: '30m' },
      cleanup: { type: 'boolean' },
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (!values.namespace) throw new UsageError('--namespace is required: the production namespace whose backup is drilled');
  if (values.backup && values.schedule) throw new UsageError('give --backup or --schedule, not both');
  if (values['drill-namespace'] === values.namespace) {
    throw new UsageError(`--drill-namespace ${values.namespace} is the production namespace: a drill restores beside production, never into it; choose another name (default ${values.namespace}-drill)`);
  }
  const timeoutMs = parseTimeout(values.timeout as string);
  const namespace = values.namespace as string;
  return {
    namespace,
    drillNamespace: (values['drill-namespace'] as string | undefined) ?? `${namespace}-drill`,
    veleroNs: values['velero-namespace'] as string,
    backup: values.backup as string | undefined,
    schedule: values.schedule as string | undefined,
    timeout: values.timeout as string,
    timeoutMs,
    cleanup: Boolean(values.cleanup),
    json: Boolean(values.json),
    kube: {
      ...(values.kubeconfig ? { kubeconfig: values.kubeconfig as string } : {}),
      ...(values.context ? { context: values.context as string } : {}),
    },
  };
}

/** The drill's Restore: the backup's namespace mapped to the drill namespace, labelled as a drill. */
function drillRestore(a: DrillArgs, backup: string, restoreName: string): VeleroRestore {
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
    },
  };
}

/**
 * The Restore once it has ended, or as the last poll before the deadline saw it: no poll starts
 * that would end after the deadline, so the wait is bounded by --timeout (plus the last request)
 * however long Velero takes.
 */
async function waitForRestore(kube: KubeClient, veleroNs: string, name: string, deadline: number, pollMs: number, now: () => Date): Promise<VeleroRestore> {
  let current = await kube.getRestore(veleroNs, name);
  while (!TERMINAL.has(current.status?.phase ?? '') && now().getTime() + pollMs <= deadline) {
    await sleep(pollMs);
    current = await kube.getRestore(veleroNs, name);
  }
  return current;
}

/** The report of a Restore as waitForRestore left it; the pods are looked at only once it has ended. */
async function drillReport(
  kube: KubeClient,
  a: DrillArgs,
  run: { backup: string; restoreName: string; current: VeleroRestore; started: Date; now: () => Date },
): Promise<DrillReport> {
  const { restoreName, started } = run;
  const status = run.current.status ?? {};
  const phase = status.phase ?? 'New';
  const timedOut = !TERMINAL.has(phase);
  const pods = timedOut ? [] : await drillPods(kube, a.namespace, a.drillNamespace);
  const problems = drillProblems({ restore: restoreName, drillNamespace: a.drillNamespace, phase, timedOut, errors: status.errors ?? 0, pods }, a.timeout);
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
    failureReason: status.failureReason ?? null,
    validationErrors: status.validationErrors ?? [],
    pods,
    problems,
    cleanup: { requested: a.cleanup, deleted: false, note: null, earlier: null },
  };
}

/**
 * Why the drill did not pass. Completed with no errors is not enough on its own: a restored pod
 * without the verify hook was not checked against the backup's counts, and one on the production
 * hostPath endangers production.
 */
function drillProblems(r: Pick<DrillReport, 'restore' | 'drillNamespace' | 'phase' | 'timedOut' | 'errors' | 'pods'>, timeout: string): string[] {
  const { restore, drillNamespace, phase } = r;
  const problems: string[] = [];
  if (r.timedOut) problems.push(`the Restore was still ${phase} after ${timeout}: see velero restore describe ${restore}`);
  else if (phase !== 'Completed') problems.push(`the Restore ended ${phase}: see velero restore describe ${restore} --details and velero restore logs ${restore}`);
  if (r.errors > 0) problems.push(`${r.errors} error(s) in the Restore`);
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
async function clearEarlierDrill(kube: KubeClient, a: DrillArgs, pollMs: number, now: () => Date): Promise<string | null> {
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

/** --cleanup, into the report: only the namespace this drill created (it did not exist before), never production. */
async function cleanUp(kube: KubeClient, report: DrillReport): Promise<void> {
  const { drillNamespace } = report;
  if (report.timedOut) {
    report.cleanup.note = `not done: the Restore is still running; delete namespace ${drillNamespace} once it has ended`;
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
