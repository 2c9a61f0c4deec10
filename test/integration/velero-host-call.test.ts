/**
 * Single-call mode of the Go Velero host harness (`velero-host -call`): one Execute call on the
 * built executable (or one Progress or Cancel of a restore operation), launched the way Velero
 * launches it, with the result, the plugin's log lines and its shutdown recorded. The end-to-end
 * tests build on callAction; these only prove the path.
 */
import { expect } from 'chai';
import { paths, requireComponents } from '../support/components.js';
import { callAction, VeleroHostCallError, type CallResult } from '../support/velero-host.js';

const pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name: 'vmsingle-0',
    namespace: 'monitoring',
    labels: { 'app.kubernetes.io/name': 'vmsingle', 'velero-plugin-victoria.io/kind': 'metrics' },
    annotations: { 'backup.velero.io/backup-volumes': 'data' },
  },
  spec: {
    volumes: [{ name: 'data', hostPath: { path: '/var/lib/vmsingle', type: 'DirectoryOrCreate' } }],
    containers: [{ name: 'vmsingle', image: 'victoriametrics/victoria-metrics:v1.110.0' }],
  },
};

function backup(phase: string) {
  return {
    apiVersion: 'velero.io/v1',
    kind: 'Backup',
    metadata: { name: 'daily-20261121', namespace: 'velero' },
    spec: { includedNamespaces: ['monitoring'], storageLocation: 'default', ttl: '720h0m0s' },
    status: { phase, startTimestamp: '2026-11-21T02:00:00Z' },
  };
}

const restore = {
  apiVersion: 'velero.io/v1',
  kind: 'Restore',
  metadata: { name: 'daily-20261121-20261122093000', namespace: 'velero' },
  spec: { backupName: 'daily-20261121', includedNamespaces: ['monitoring'] },
  status: { phase: 'InProgress', startTimestamp: '2026-11-22T09:30:00Z' },
};

// None of these calls may reach a cluster; a kubeconfig that does not exist makes sure of it.
const env = { KUBECONFIG: '/nonexistent/kubeconfig' };

function expectCleanRun(res: CallResult): void {
  expect(res.logViolations, res.output).to.deep.equal([]);
  expect(res.stderrOther, res.output).to.deep.equal([]);
  expect(res.shutdown, res.output).to.equal('');
  expect(res.exitCode, res.output).to.equal(0);
}

describe('Velero host harness, single-call mode', function () {
  before(function () {
    requireComponents(this, paths.plugin, paths.veleroHost);
  });

  it('delete of a pod without a backup record: ok, says there is nothing to remove', async () => {
    const res = await callAction(paths.plugin, {
      call: 'delete',
      pluginName: 'velero-plugin-victoria.io/pod-delete',
      item: pod,
      backup: backup('Deleting'),
      env,
    });
    expect(res.ok, res.error).to.equal(true);
    expect(res.item).to.equal(null);
    const info = res.logs.filter((l) => l['@level'] === 'info' && /nothing to remove/.test(l['@message']));
    expect(info, JSON.stringify(res.logs)).to.have.length(1);
    expect(info[0]).to.include({ namespace: 'monitoring', name: 'vmsingle-0' });
    expectCleanRun(res);
  });

  it('backup in the Finalizing phase returns the item unchanged', async () => {
    const res = await callAction(paths.plugin, {
      call: 'backup',
      pluginName: 'velero-plugin-victoria.io/pod-backup',
      item: pod,
      backup: backup('Finalizing'),
      env,
    });
    expect(res.ok, res.error).to.equal(true);
    expect(res.item).to.deep.equal(pod);
    expect(res.itemProblem).to.equal('');
    expect(res.additionalItems).to.deep.equal([]);
    expect(res.operationID).to.equal('');
    expectCleanRun(res);
  });

  it('restore of a pod returns an item', async () => {
    const res = await callAction(paths.plugin, {
      call: 'restore',
      pluginName: 'velero-plugin-victoria.io/pod-restore',
      item: pod,
      restore,
      env,
    });
    expect(res.ok, res.error).to.equal(true);
    expect(res.item).to.have.property('kind', 'Pod');
    expect(res.itemProblem).to.equal('');
    expect(res.skipRestore).to.equal(false);
    expectCleanRun(res);
  });

  // Velero's restore operations controller asks from a fresh plugin process that never saw the Execute.
  it('restore -progress-of: Progress alone, in a fresh plugin process, answers an OperationProgress', async () => {
    const res = await callAction(paths.plugin, {
      call: 'restore',
      pluginName: 'velero-plugin-victoria.io/pod-restore',
      restore,
      progressOf: 'monitoring/vmsingle-0/r-1',
      env,
    });
    expect(res.ok, res.error).to.equal(true);
    expect(res.progress, res.output).to.be.an('object');
    const progress = res.progress!;
    expect(progress.completed).to.be.a('boolean');
    expect(progress.err).to.be.a('string');
    expect(progress).to.not.have.property('error');
    for (const field of ['nCompleted', 'nTotal'] as const) expect(progress[field]).to.be.a('number');
    for (const field of ['operationUnits', 'description'] as const) expect(progress[field]).to.be.a('string');
    expect(res.item).to.equal(null);
    expectCleanRun(res);
  });

  it('restore -cancel-of: Cancel alone returns without an error', async () => {
    const res = await callAction(paths.plugin, {
      call: 'restore',
      pluginName: 'velero-plugin-victoria.io/pod-restore',
      restore,
      cancelOf: 'monitoring/vmsingle-0/r-1',
      env,
    });
    expect(res.ok, res.error).to.equal(true);
    expect(res.progress).to.equal(null);
    expectCleanRun(res);
  });

  it('rejects when the plugin cannot even be started', async () => {
    const err: unknown = await callAction('/bin/false', {
      call: 'delete',
      pluginName: 'velero-plugin-victoria.io/pod-delete',
      item: pod,
      backup: backup('Deleting'),
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(VeleroHostCallError);
    expect((err as VeleroHostCallError).status).to.equal(1);
    expect((err as VeleroHostCallError).message).to.match(/handshake/);
  });
});
