/**
 * `drill` against the loopback API stand-in, with the test playing Velero: once the command has
 * created the Restore, the test restores a Victoria pod into the drill namespace (remapped hostPath,
 * verify hook annotation, as the plugin's restore action writes them) and sets the Restore's status;
 * the command's poll sees it and reports.
 */
import { expect } from 'chai';
import { KIND_LABEL } from '../../src/actions/names.js';
import { RESTORE_HOOK } from '../../src/actions/drill-spec.js';
import { drillCommand, parseTimeout } from '../../src/cli/commands/drill.js';
import { DRILL_LABEL, drillRestoreName } from '../../src/actions/drill.js';
import { startKubeApi, type KubeApiServer, type KubeObject } from '../support/kube-api.js';
import { cronJobPod } from '../support/schedules.js';

const KIND = 'velero-plugin-victoria.io/kind';
const BASE = Date.parse('2026-12-01T09:30:00Z');
const PROD_PATH = '/mnt/db1/victoriametrics';
const COUNTS = { series: 12, samples: 3456 };

function victoriaPod(namespace: string, hostPath: string, annotations: Record<string, string> = {}, labels: Record<string, string> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'vm-0', namespace, labels: { [KIND]: 'metrics', ...labels }, annotations },
    spec: {
      containers: [
        { name: 'victoria-metrics', image: 'vm:1', volumeMounts: [{ name: 'data', mountPath: '/storage' }] },
        { name: 'victoria-companion', image: 'plugin:1', volumeMounts: [{ name: 'data', mountPath: '/victoria-data', readOnly: true }] },
      ],
      volumes: [{ name: 'data', hostPath: { path: hostPath, type: 'DirectoryOrCreate' } }],
    },
    status: { phase: 'Running' },
  };
}

function backup(name: string, completed: string, extra: { phase?: string; schedule?: string; namespaces?: string[]; uncounted?: boolean } = {}): KubeObject {
  return {
    apiVersion: 'velero.io/v1',
    kind: 'Backup',
    metadata: {
      name,
      namespace: 'velero',
      labels: { ...(extra.schedule ? { 'velero.io/schedule-name': extra.schedule } : {}), ...(extra.uncounted ? { 'velero-plugin-victoria.io/counts': 'false' } : {}) },
    },
    spec: { includedNamespaces: extra.namespaces ?? ['monitoring'] },
    status: { phase: extra.phase ?? 'Completed', completionTimestamp: completed },
  };
}

interface Run {
  code: number;
  out: string;
  err: string;
  restore?: KubeObject;
}

describe('drill: a Velero restore into a drill namespace, against the API stand-in', function () {
  let api: KubeApiServer;
  let kubeconfig: string;

  beforeEach(async () => {
    api = await startKubeApi();
    kubeconfig = api.writeKubeconfig();
    api.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'velero' } });
    api.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'monitoring' } });
    api.put(victoriaPod('monitoring', PROD_PATH));
  });
  afterEach(async () => {
    await api.close();
  });

  /** Runs the command; `velero` plays Velero on the Restore once it exists. */
  async function run(args: string[], velero?: (restore: KubeObject) => void): Promise<Run> {
    let out = '';
    let err = '';
    const t0 = Date.now();
    let seen: KubeObject | undefined;
    const watcher = setInterval(() => {
      if (seen || !velero) return;
      for (const b of ['victoria-daily-20261130020000', 'victoria-daily-20261201020000', 'old', 'victoria-4hourly-20261201080000', 'victoria-monthly-20261201060000']) {
        // The name carries the second the command made it: up to a minute late on a loaded machine.
        for (let s = 0; s < 60; s++) {
          const name = drillRestoreName(b, new Date(BASE + s * 1000));
          const r = api.get('velero.io/v1', 'Restore', 'velero', name);
          if (r) {
            seen = r;
            velero(r);
            return;
          }
        }
      }
    }, 10);
    try {
      const code = await drillCommand([...args, '--kubeconfig', kubeconfig], {
        pollMs: 20,
        now: () => new Date(BASE + Date.now() - t0),
        stdout: (t) => (out += t),
        stderr: (t) => (err += t),
      });
      return { code, out, err, ...(seen ? { restore: seen } : {}) };
    } finally {
      clearInterval(watcher);
    }
  }

  /**
   * Velero's work: the restored pod in the drill namespace, then the Restore's final status. Without
   * a hook, the pod is restored as the plugin restores a backup that holds no counts.
   */
  const restoreAs = (phase: string, status: Record<string, unknown> = {}, withHook = true) => (restore: KubeObject) => {
    const name = restore.metadata.name!;
    // Velero labels what it restores with the Restore's name, but not a namespace it creates.
    api.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'monitoring-drill' } });
    const hook = ['/plugins/velero-plugin-victoria', 'companion', 'verify', '--expect', JSON.stringify(COUNTS), '--timeout', '10m'];
    api.put(
      victoriaPod(
        'monitoring-drill',
        `${PROD_PATH}-drill-${name}`,
        withHook ? { [RESTORE_HOOK.container]: 'victoria-companion', [RESTORE_HOOK.command]: JSON.stringify(hook) } : {},
        { 'velero.io/restore-name': name },
      ),
    );
    // Velero counts the post-restore hooks it ran (status.hookStatus): the verify hook of the one pod.
    api.put({ ...restore, status: { phase, warnings: 1, errors: 0, hookStatus: { hooksAttempted: withHook ? 1 : 0, hooksFailed: 0 }, ...status } });
  };

  it('restores the newest counted Completed backup into monitoring-drill and passes (--json)', async () => {
    api.put(backup('old', '2026-11-01T02:10:00Z'));
    api.put(backup('victoria-daily-20261201020000', '2026-12-01T02:12:00Z', { schedule: 'victoria-daily' }));
    api.put(backup('victoria-daily-20261130020000', '2026-11-30T02:12:00Z', { schedule: 'victoria-daily' }));
    api.put(backup('newer-but-failed', '2026-12-01T05:00:00Z', { phase: 'Failed' }));
    api.put(backup('newer-other-ns', '2026-12-01T06:00:00Z', { namespaces: ['other'] }));
    // The 4-hourly tier is not counted (schedules/victoria-4hourly.yaml): a drill of it could check checksums only.
    api.put(backup('victoria-4hourly-20261201080000', '2026-12-01T08:05:00Z', { schedule: 'victoria-4hourly', uncounted: true }));

    const r = await run(['--namespace', 'monitoring', '--json'], restoreAs('Completed'));
    expect(r.code, r.err + r.out).to.equal(0);
    const restore = r.restore!;
    expect(restore.metadata.name).to.match(/^drill-victoria-daily-20261201020000-202612010930[0-5]\d$/);
    expect(restore.metadata.labels).to.deep.equal({ [DRILL_LABEL]: 'true' });
    expect(restore.spec).to.deep.equal({
      backupName: 'victoria-daily-20261201020000',
      includedNamespaces: ['monitoring'],
      namespaceMapping: { monitoring: 'monitoring-drill' },
      // Only the Victoria objects: another pod of the namespace would open its production hostPath.
      labelSelector: { matchExpressions: [{ key: KIND_LABEL, operator: 'Exists' }] },
      // The data's download is the restore action's operation: Velero's 4 h default must not end it before --timeout (30m).
      itemOperationTimeout: '1800s',
    });
    const report = JSON.parse(r.out);
    expect(report).to.include({
      passed: true,
      backup: 'victoria-daily-20261201020000',
      restore: restore.metadata.name,
      drillNamespace: 'monitoring-drill',
      namespace: 'monitoring',
      phase: 'Completed',
      warnings: 1,
      errors: 0,
      timedOut: false,
    });
    expect(report.durationSeconds).to.be.a('number');
    expect(report.pods).to.deep.equal([
      { name: 'vm-0', kind: 'metrics', hostPath: `${PROD_PATH}-drill-${restore.metadata.name}`, productionHostPath: PROD_PATH, expect: COUNTS, state: 'Running' },
    ]);
    expect(report.cleanup).to.deep.equal({ requested: false, deleted: false, note: null, earlier: null });
    expect(api.get('v1', 'Namespace', undefined, 'monitoring-drill'), 'kept without --cleanup').to.not.equal(undefined);
  });

  it('an API server that fails a few polls of the Restore (503) does not end the drill: it waits on and reports', async () => {
    api.put(backup('old', '2026-11-01T02:10:00Z'));
    const r = await run(['--namespace', 'monitoring', '--json'], (restore) => {
      api.put({ ...restore, status: { phase: 'InProgress' } });
      api.unavailable('get', 'restores', 3);
      setTimeout(() => restoreAs('Completed')(restore), 300);
    });
    expect(r.code, r.err + r.out).to.equal(0);
    expect(JSON.parse(r.out)).to.include({ passed: true, phase: 'Completed' });
  });

  it('says while it waits how far the Restore is, the Victoria data of each pod included; a pod whose data failed fails the drill', async () => {
    api.put(backup('victoria-daily-20261201020000', '2026-12-01T02:12:00Z'));
    const r = await run(['--namespace', 'monitoring'], (restore) => {
      restoreAs('InProgress')(restore);
      const status = (phase: string, completed: number, failed: number) => ({ phase, errors: failed, restoreItemOperationsAttempted: 1, restoreItemOperationsCompleted: completed, restoreItemOperationsFailed: failed });
      setTimeout(() => api.put({ ...restore, status: status('WaitingForPluginOperations', 0, 0) }), 100);
      // The operation failed; Velero goes on to wait for the pod's verify hook, which waits for a database that never starts.
      setTimeout(() => api.put({ ...restore, status: status('WaitingForPluginOperationsPartiallyFailed', 0, 1) }), 300);
    });
    expect(r.code, r.err + r.out).to.equal(1);
    const name = r.restore!.metadata.name!;
    // The first poll may come before "Velero" has set a phase: New.
    const notes = r.err.split('\n').filter((l) => l.startsWith(`drill: restore ${name}:`) && l !== `drill: restore ${name}: New`);
    // Each state once, in order: the polls in between change nothing and stay quiet.
    expect(notes).to.deep.equal([
      `drill: restore ${name}: InProgress`,
      `drill: restore ${name}: WaitingForPluginOperations; Victoria data of 0 of 1 pod(s) restored`,
      `drill: restore ${name}: WaitingForPluginOperationsPartiallyFailed; Victoria data of 0 of 1 pod(s) restored, 1 failed`,
    ]);
    // Decided without waiting for --timeout (30m).
    expect(r.out).to.include('drill FAILED');
    expect(r.out).to.include('phase:           WaitingForPluginOperationsPartiallyFailed\n');
    expect(r.out).to.include(`the Victoria data of 1 pod(s) was not restored (Restore WaitingForPluginOperationsPartiallyFailed): velero restore describe ${name} --details names each pod and why`);
    expect(r.out).to.include(`Velero holds ${name} in WaitingForPluginOperationsPartiallyFailed while the verify hook of a pod without its data waits`);
    expect(r.out).to.include(`1 error(s) in the Restore: velero restore describe ${name} --details lists them`);
  });

  it('a Restore that completed without running every verify hook (a Velero restart forgets them) fails the drill', async () => {
    api.put(backup('victoria-daily-20261201020000', '2026-12-01T02:12:00Z'));
    const r = await run(['--namespace', 'monitoring', '--json'], restoreAs('Completed', { hookStatus: { hooksAttempted: 0, hooksFailed: 0 } }));
    expect(r.code, r.err + r.out).to.equal(1);
    const report = JSON.parse(r.out);
    expect(report).to.include({ passed: false, phase: 'Completed', hooksAttempted: 0, operationsFailed: 0 });
    expect(report.problems).to.deep.equal([
      `Velero ran 0 of the 1 verify hook(s) (status.hookStatus of ${report.restore}), so not every restored database was checked against the backup's counts: ` +
        'a restart of the Velero server during the restore drops the hooks it waits for; run the drill again',
    ]);
  });

  it('prints a readable report, and --schedule picks only that schedule\'s backups', async () => {
    api.put(backup('victoria-4hourly-20261201080000', '2026-12-01T08:05:00Z', { schedule: 'victoria-4hourly' }));
    api.put(backup('victoria-daily-20261201020000', '2026-12-01T02:12:00Z', { schedule: 'victoria-daily' }));
    // --context names the stand-in's one context: the same cluster.
    const r = await run(['--namespace', 'monitoring', '--schedule', 'victoria-daily', '--context', 'stand-in'], restoreAs('Completed'));
    expect(r.code, r.err + r.out).to.equal(0);
    expect(r.out).to.include('drill PASSED');
    expect(r.out).to.include('backup:          victoria-daily-20261201020000');
    expect(r.out).to.include(`hostPath ${PROD_PATH}-drill-${r.restore!.metadata.name} (production: ${PROD_PATH}, untouched)`);
    expect(r.out).to.include(`expects ${JSON.stringify(COUNTS)}`);
    expect(r.out).to.include('companion verify');
  });

  it('a Failed restore exits 1 and says why; --cleanup keeps its namespace, whose pods\' logs say why', async () => {
    api.put(backup('victoria-daily-20261201020000', '2026-12-01T02:12:00Z'));
    const r = await run(['--namespace', 'monitoring', '--cleanup', '--json'], restoreAs('Failed', { errors: 2, failureReason: 'hook failed' }));
    expect(r.code).to.equal(1);
    const report = JSON.parse(r.out);
    expect(report.passed).to.equal(false);
    expect(report.phase).to.equal('Failed');
    expect(report.failureReason).to.equal('hook failed');
    expect(report.problems.join('\n')).to.match(/ended Failed/).and.match(/2 error/);
    expect(report.cleanup.deleted).to.equal(false);
    expect(report.cleanup.note).to.equal(
      'kept: the drill failed, and the logs of its pods in monitoring-drill (init container victoria-restore, the database, the companion) show why; the next drill with --cleanup deletes it, or delete it yourself once read',
    );
    expect(api.get('v1', 'Pod', 'monitoring-drill', 'vm-0'), 'kept for its logs').to.not.equal(undefined);
    expect(api.requests.filter((q) => q.method === 'DELETE')).to.deep.equal([]);
    // The next drill with --cleanup deletes it first, as its Restore has ended (the test of
    // --cleanup and an earlier drill's namespace below).
    expect(api.get('v1', 'Namespace', undefined, 'monitoring'), 'production stays').to.not.equal(undefined);
    expect(api.get('v1', 'Pod', 'monitoring', 'vm-0')).to.not.equal(undefined);
  });

  it('a drill that times out says what holds its pods up: the restore init container\'s own message', async () => {
    api.put(backup('victoria-daily-20261201020000', '2026-12-01T02:12:00Z'));
    const message = 'restore plan expired at 2026-12-01T08:00:00Z (restore drill-x): run the restore again after deleting the workload';
    const r = await run(['--namespace', 'monitoring', '--timeout', '1s', '--json'], (restore) => {
      restoreAs('InProgress')(restore);
      const pod = api.get('v1', 'Pod', 'monitoring-drill', 'vm-0')!;
      api.put({
        ...pod,
        status: {
          phase: 'Pending',
          initContainerStatuses: [{ name: 'victoria-restore', ready: false, state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s restarting failed container' } }, lastState: { terminated: { exitCode: 1, message } } }],
          containerStatuses: [{ name: 'victoria-metrics', ready: false, state: { waiting: { reason: 'PodInitializing' } } }],
        },
      });
    });
    expect(r.code, r.err + r.out).to.equal(1);
    const report = JSON.parse(r.out);
    expect(report).to.include({ passed: false, timedOut: true, phase: 'InProgress' });
    const state = `Pending: init container victoria-restore waiting: CrashLoopBackOff (back-off 40s restarting failed container); last exit 1: ${message}`;
    expect(report.pods[0].state).to.equal(state);
    expect(report.problems).to.include(`pod monitoring-drill/vm-0: ${state}`);
    expect(report.problems[0]).to.match(/^the Restore was still InProgress after 1s: see velero restore describe drill-/);
  });

  it('a named backup without counts: the drill fails, saying its data was checked by checksums only', async () => {
    api.put(backup('victoria-4hourly-20261201080000', '2026-12-01T08:05:00Z', { schedule: 'victoria-4hourly', uncounted: true }));
    const r = await run(['--namespace', 'monitoring', '--backup', 'victoria-4hourly-20261201080000', '--json'], restoreAs('Completed', {}, false));
    expect(r.code, r.err + r.out).to.equal(1);
    const report = JSON.parse(r.out);
    expect(report.passed).to.equal(false);
    expect(report.pods[0].expect).to.equal(null);
    const problem = report.problems.join('\n');
    expect(problem).to.include('pod monitoring-drill/vm-0 has no verify hook, so its data was not checked against the backup\'s counts');
    expect(problem).to.include('the backup holds no counts (labelled velero-plugin-victoria.io/counts=false, or its count failed');
    expect(problem).to.include('drill a counted backup');
    expect(problem).to.include(`velero restore logs ${r.restore!.metadata.name}`);
  });

  it('a named backup must be finished; no backup at all is a clear error; usage errors exit 2', async () => {
    api.put(backup('running', '', { phase: 'InProgress' }));
    let err = await run(['--namespace', 'monitoring', '--backup', 'running']).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).to.match(/backup "running" in namespace velero is InProgress, not Completed or PartiallyFailed/);
    err = await run(['--namespace', 'monitoring', '--backup', 'nope']).then(() => undefined, (e: Error) => e);
    expect(err?.message).to.match(/backup "nope" not found in namespace velero/);
    err = await run(['--namespace', 'monitoring']).then(() => undefined, (e: Error) => e);
    expect(err?.message).to.match(/no Completed backup that includes namespace monitoring and was counted \(not labelled velero-plugin-victoria\.io\/counts=false\) in namespace velero \(1 backup there\)/);
    err = await run(['--namespace', 'monitoring', '--context', 'prod-eu']).then(() => undefined, (e: Error) => e);
    expect(err?.message).to.equal('the kubeconfig has no context "prod-eu": kubectl config get-contexts lists those it has');
    expect(api.requests.filter((q) => q.method === 'POST'), 'no Restore created').to.deep.equal([]);

    const usage: Array<[string[], RegExp]> = [
      [[], /--namespace is required/],
      [['--namespace', 'monitoring', '--drill-namespace', 'monitoring'], /is the production namespace/],
      [['--namespace', 'monitoring', '--timeout', '5 minutes'], /not a duration/],
      [['--namespace', 'monitoring', '--backup', 'a', '--schedule', 'b'], /not both/],
      [['--bogus'], /Unknown option '--bogus'/],
    ];
    for (const [args, message] of usage) {
      const r = await run(args);
      expect(r.code, args.join(' ')).to.equal(2);
      expect(r.err).to.match(message).and.include('velero-plugin-victoria drill [--backup NAME');
    }
  });

  it('refuses a drill namespace that exists already', async () => {
    api.put(backup('victoria-daily-20261201020000', '2026-12-01T02:12:00Z'));
    api.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'monitoring-drill' } });
    const err = await run(['--namespace', 'monitoring']).then(() => undefined, (e: Error) => e);
    expect(err?.message).to.match(/namespace monitoring-drill exists already .*kubectl delete namespace monitoring-drill/);
  });

  it('--cleanup first deletes a drill namespace an earlier drill left, once its Restore has ended; anything else is refused', async () => {
    api.put(backup('victoria-daily-20261201020000', '2026-12-01T02:12:00Z'));
    const earlier = (phase: string, labels: Record<string, string> = { [DRILL_LABEL]: 'true' }) =>
      api.put({
        apiVersion: 'velero.io/v1',
        kind: 'Restore',
        metadata: { name: 'drill-timed-out', namespace: 'velero', labels },
        spec: { backupName: 'old', namespaceMapping: { monitoring: 'monitoring-drill' } },
        status: { phase },
      });
    api.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'monitoring-drill' } });
    api.put(victoriaPod('monitoring-drill', `${PROD_PATH}-drill-drill-timed-out`, {}, { 'velero.io/restore-name': 'drill-timed-out' }));
    const refused = (args: string[]) => run(['--namespace', 'monitoring', ...args]).then(() => '', (e: Error) => e.message);

    earlier('InProgress');
    expect(await refused([])).to.include('namespace monitoring-drill exists already (left by drill drill-timed-out, InProgress; --cleanup deletes it once that Restore has ended)');
    expect(await refused(['--cleanup'])).to.include(
      'namespace monitoring-drill exists already (left by drill drill-timed-out, which is still InProgress: run the drill again once it has ended (velero restore describe drill-timed-out))',
    );
    earlier('Completed', {});
    expect(await refused(['--cleanup'])).to.include('namespace monitoring-drill exists already (its Victoria pods come from Restore drill-timed-out, which is not a drill of this namespace)');
    expect(api.requests.filter((q) => q.method === 'DELETE' || q.method === 'POST'), 'nothing deleted or created').to.deep.equal([]);

    earlier('PartiallyFailed');
    const r = await run(['--namespace', 'monitoring', '--cleanup', '--json'], restoreAs('Completed'));
    expect(r.code, r.err + r.out).to.equal(0);
    const report = JSON.parse(r.out);
    expect(report.cleanup).to.deep.equal({
      requested: true,
      deleted: true,
      note: `namespace monitoring-drill deleted; remove the drill's hostPath directories on the node (${PROD_PATH}-drill-${r.restore!.metadata.name})`,
      earlier: "deleted namespace monitoring-drill, left by drill drill-timed-out (PartiallyFailed); remove that drill's hostPath directories on the node",
    });
    // The earlier drill's namespace before the Restore, this drill's after the report.
    expect(api.requests.filter((q) => q.method === 'DELETE').map((q) => q.path)).to.deep.equal(['/api/v1/namespaces/monitoring-drill', '/api/v1/namespaces/monitoring-drill']);
    expect(api.get('v1', 'Pod', 'monitoring', 'vm-0'), 'production stays').to.not.equal(undefined);

    // A namespace being deleted already (another --cleanup, kubectl delete): waited for, not deleted again.
    api.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'monitoring-drill', deletionTimestamp: new Date(BASE).toISOString() } });
    api.put(victoriaPod('monitoring-drill', `${PROD_PATH}-drill-drill-timed-out`, {}, { 'velero.io/restore-name': 'drill-timed-out' }));
    const deletesBefore = api.requests.filter((q) => q.method === 'DELETE').length;
    api.remove('velero.io/v1', 'Restore', 'velero', r.restore!.metadata.name!); // the fake clock would name the next one the same
    setTimeout(() => api.remove('v1', 'Namespace', undefined, 'monitoring-drill'), 200);
    const again = await run(['--namespace', 'monitoring', '--cleanup', '--json'], restoreAs('Completed'));
    expect(again.code, again.err + again.out).to.equal(0);
    expect(JSON.parse(again.out).cleanup.earlier).to.match(/^deleted namespace monitoring-drill, left by drill drill-timed-out/);
    expect(api.requests.filter((q) => q.method === 'DELETE').length, "only this drill's own clean-up deletes").to.equal(deletesBefore + 1);
  });

  it('fails a drill whose pod uses a production hostPath, also when the production pod has another name (a Deployment\'s)', async () => {
    api.put(backup('victoria-daily-20261201020000', '2026-12-01T02:12:00Z'));
    api.remove('v1', 'Pod', 'monitoring', 'vm-0');
    const renamed = victoriaPod('monitoring', PROD_PATH);
    api.put({ ...renamed, metadata: { ...renamed.metadata, name: 'vmsingle-7c9d-x2x9q' } });
    // A restore action that did not remap the hostPath (not installed, say): the drill pod on production's data.
    const unmapped = (restore: KubeObject) => {
      api.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'monitoring-drill', labels: { 'velero.io/restore-name': restore.metadata.name! } } });
      api.put(victoriaPod('monitoring-drill', PROD_PATH));
      api.put({ ...restore, status: { phase: 'Completed', warnings: 0, errors: 0 } });
    };
    const r = await run(['--namespace', 'monitoring', '--json'], unmapped);
    expect(r.code, r.err + r.out).to.equal(1);
    const report = JSON.parse(r.out);
    expect(report.pods[0]).to.include({ name: 'vm-0', hostPath: PROD_PATH, productionHostPath: PROD_PATH });
    expect(report.problems).to.include(`pod monitoring-drill/vm-0 uses the production hostPath ${PROD_PATH}: stop it now`);
  });

  it('the monthly CronJob of schedules/drill-cronjob.yaml, with its own arguments, drills the monthly tier and cleans up', async () => {
    const [command, ...args] = cronJobPod('drill-cronjob.yaml').containers[0]!.args;
    expect(command).to.equal('drill');
    api.put(backup('victoria-daily-20261201020000', '2026-12-01T02:12:00Z', { schedule: 'victoria-daily' }));
    api.put(backup('victoria-monthly-20261201060000', '2026-12-01T06:20:00Z', { schedule: 'victoria-monthly' }));
    const r = await run(args, restoreAs('Completed'));
    expect(r.code, r.err + r.out).to.equal(0);
    expect(r.out).to.include('drill PASSED').and.include('backup:          victoria-monthly-20261201060000');
    expect(r.out).to.include('cleanup: namespace monitoring-drill deleted');
    expect(api.get('v1', 'Namespace', undefined, 'monitoring-drill')).to.equal(undefined);
  });

  it('parses durations', () => {
    expect(parseTimeout('30m')).to.equal(1_800_000);
    expect(parseTimeout('1h30m')).to.equal(5_400_000);
    expect(parseTimeout('90s')).to.equal(90_000);
    expect(() => parseTimeout('30')).to.throw(/not a duration/);
  });
});
