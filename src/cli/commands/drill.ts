/**
 * `drill`: proves a backup by restoring it through Velero into another namespace (actions/drill.ts
 * runs it; docs/velero-restore.md, Drills). This parses the flags and prints the report.
 */
import { durationFlag } from '../duration-flag.js';
import { parseFlags } from '../../common/parse-flags.js';
import { UsageError } from '../../common/usage-error.js';
import { runDrill, type DrillRequest } from '../../actions/drill.js';
import type { DrillReport } from '../../actions/drill-report.js';
import { KubeClient, type LoadKubeConfigOptions } from '../../kube/client.js';

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
    lines.push(`    ${p.name} (${p.kind ?? '?'}, ${p.state}): ${where}${prod}; expects ${p.expect ? JSON.stringify(p.expect) : 'nothing (no verify hook)'}`);
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

/** The command line, checked: the drill, and how to print it and reach the cluster. */
interface DrillArgs extends DrillRequest {
  json: boolean;
  kube: LoadKubeConfigOptions;
}

export async function drillCommand(args: string[], options: DrillOptions = {}): Promise<number> {
  const stdout = options.stdout ?? ((t: string) => void process.stdout.write(t));
  const stderr = options.stderr ?? ((t: string) => void process.stderr.write(t));

  let a: DrillArgs;
  try {
    a = parseDrillArgs(args);
  } catch (err) {
    stderr(`velero-plugin-victoria drill: ${(err as Error).message}\n\n${DRILL_USAGE}\n`);
    return 2;
  }
  const report = await runDrill(KubeClient.load(a.kube), a, {
    pollMs: options.pollMs ?? 5000,
    now: options.now ?? (() => new Date()),
    note: (text) => {
      if (!a.json) stderr(`drill: ${text}\n`);
    },
  });
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
