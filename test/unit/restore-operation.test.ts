/** The pod restore action's operation: what the restored pod's state means for Velero's Restore. */
import { expect } from 'chai';
import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { MAX_FAILED_RUNS, MAX_QUOTE, STUCK_MS, parseRestoreOperationId, restoreOperationId, restoreProgress, type RestoreOperation } from '../../src/actions/restore-operation.js';

const SHA = 'a'.repeat(64);
const op: RestoreOperation = { namespace: 'monitoring', pod: 'vmsingle-5d4f8b7c9-x2x9q', planSha256: SHA };
const now = new Date('2026-11-23T10:00:00Z');
const started = new Date('2026-11-23T09:58:00Z');

function pod(status: Partial<V1ContainerStatus> | undefined, extra: Partial<V1Pod['status']> = {}, sha = SHA): V1Pod {
  return {
    metadata: { name: op.pod, namespace: op.namespace },
    spec: {
      initContainers: [
        { name: 'restore-wait', image: 'velero/velero' },
        { name: 'victoria-restore', image: 'plugin', command: ['/plugins/velero-plugin-victoria', 'restore', '--plan-url', 'http://x/plan?X-Amz-Signature=s', '--plan-sha256', sha, '--data-dir', '/victoria-data'] },
      ],
      containers: [{ name: 'vmsingle', image: 'vm' }],
    },
    status: {
      phase: 'Pending',
      ...(status ? { initContainerStatuses: [{ name: 'victoria-restore', image: 'plugin', imageID: '', ready: false, restartCount: 0, ...status }] } : {}),
      ...extra,
    },
  };
}

const failedRun = (message: string) => ({ exitCode: 1, reason: 'Error', message, startedAt: started, finishedAt: now });

describe('restore operation: Velero follows the restored pod until its data is there', () => {
  it('is named after the pod and its plan, and only such names parse', () => {
    const id = restoreOperationId(op);
    expect(id).to.equal(`monitoring/vmsingle-5d4f8b7c9-x2x9q/${SHA}`);
    expect(parseRestoreOperationId(id)).to.deep.equal(op);
    for (const bad of ['', 'monitoring/pod', `Monitoring/pod/${SHA}`, `ns/pod/${SHA.slice(1)}`, `ns/a/b/${SHA}`]) expect(parseRestoreOperationId(bad), bad).to.equal(undefined);
  });

  it('completes without error once the init container has exited 0', () => {
    const p = restoreProgress(op, { pod: pod({ state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: started, finishedAt: now } } }, { phase: 'Running' }), now });
    expect(p).to.deep.equal({ completed: true, description: 'victoria-restore: data restored and verified', updated: now, started: now });
  });

  it('starts when the pod was created, whichever run is on: Velero takes every other start as a change', () => {
    const created = new Date('2026-11-23T09:00:00Z');
    const p = pod({ restartCount: 1, state: { running: { startedAt: started } } });
    p.metadata!.creationTimestamp = created;
    expect(restoreProgress(op, { pod: p, now })).to.deep.include({ started: created, updated: now });
  });

  it('a pod that goes once its data is restored (a rollout) leaves the operation completed', () => {
    const p = pod({ state: { terminated: { exitCode: 0, reason: 'Completed' } } }, { phase: 'Running' });
    p.metadata!.deletionTimestamp = now;
    expect(restoreProgress(op, { pod: p, now })).to.include({ completed: true, description: 'victoria-restore: data restored and verified' });
  });

  it('runs while the init container downloads, with its last log line, and from its start', () => {
    const p = restoreProgress(op, { pod: pod({ state: { running: { startedAt: started } } }), lastLogLine: 'restore b1 (Velero restore r1): 40% 12/223 files', now });
    expect(p).to.deep.equal({ completed: false, description: 'victoria-restore running: restore b1 (Velero restore r1): 40% 12/223 files', updated: now, started: now });
  });

  it('runs while the pod waits: not scheduled, the init containers before ours, an image being pulled', () => {
    const unscheduled = pod(undefined, { conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available' }] });
    expect(restoreProgress(op, { pod: unscheduled, now })).to.include({ completed: false, description: 'pod not scheduled yet: 0/3 nodes are available' });
    expect(restoreProgress(op, { pod: pod({ state: { waiting: { reason: 'PodInitializing' } } }), now })).to.include({ completed: false, description: 'pod Pending: victoria-restore has not started yet' });
    const pulling = pod({ state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "plugin"' } } });
    expect(restoreProgress(op, { pod: pulling, now })).to.include({ completed: false, description: 'victoria-restore waiting: ImagePullBackOff (Back-off pulling image "plugin")' });
  });

  it('a pod that cannot get going (not scheduled, image not pulled) fails once it has waited 30 minutes; one still being set up does not', () => {
    const aged = (p: V1Pod, ms: number) => ({ ...p, metadata: { ...p.metadata, creationTimestamp: new Date(now.getTime() - ms) } });
    const unscheduled = pod(undefined, { conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available' }] });
    expect(restoreProgress(op, { pod: aged(unscheduled, STUCK_MS - 60_000), now }).completed).to.equal(false);
    const stuck = restoreProgress(op, { pod: aged(unscheduled, STUCK_MS), now });
    expect(stuck.completed).to.equal(true);
    expect(stuck.err).to.equal(
      'pod monitoring/vmsingle-5d4f8b7c9-x2x9q: has not got its init container victoria-restore going in 30 minutes (pod not scheduled yet: 0/3 nodes are available); ' +
        'its data is not being restored: kubectl describe pod -n monitoring vmsingle-5d4f8b7c9-x2x9q (docs/velero-restore.md, "Messages and what to do")',
    );
    const pulling = pod({ state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "plugin"' } } });
    expect(restoreProgress(op, { pod: aged(pulling, STUCK_MS), now }).err).to.match(/going in 30 minutes \(victoria-restore waiting: ImagePullBackOff \(Back-off pulling image "plugin"\)\)/);
    // Waiting for the init containers before ours, or downloading for hours: not stuck.
    expect(restoreProgress(op, { pod: aged(pod({ state: { waiting: { reason: 'PodInitializing' } } }), 10 * STUCK_MS), now }).completed).to.equal(false);
    expect(restoreProgress(op, { pod: aged(pod({ state: { running: { startedAt: started } } }), 10 * STUCK_MS), now }).completed).to.equal(false);
  });

  it('a failed run is retried by Kubernetes: still running, with the reason; at the limit the operation fails naming it and the command that shows the run', () => {
    const once = pod({ state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 10s' } }, lastState: { terminated: failedRun('fetching plan\nvelero-plugin-victoria: restore plan expired at T') } });
    const p = restoreProgress(op, { pod: once, now });
    expect(p.completed).to.equal(false);
    expect(p.description).to.equal(
      `failed 1 time(s) (at ${MAX_FAILED_RUNS} this restore fails), last: velero-plugin-victoria: restore plan expired at T; victoria-restore waiting: CrashLoopBackOff (back-off 10s)`,
    );
    const third = pod({ restartCount: MAX_FAILED_RUNS - 1, state: { terminated: failedRun('velero-plugin-victoria: /victoria-data is not empty') } });
    const failed = restoreProgress(op, { pod: third, now });
    expect(failed.completed).to.equal(true);
    expect(failed.err).to.equal(
      `pod monitoring/vmsingle-5d4f8b7c9-x2x9q: init container victoria-restore failed ${MAX_FAILED_RUNS} time(s), last: velero-plugin-victoria: /victoria-data is not empty; ` +
        'Kubernetes goes on restarting it, but this restore counts its data as not restored; kubectl logs -n monitoring vmsingle-5d4f8b7c9-x2x9q -c victoria-restore shows the whole run (docs/velero-restore.md, "Messages and what to do")',
    );
    // Running again after two failures: not yet at the limit.
    expect(restoreProgress(op, { pod: pod({ restartCount: 2, state: { running: { startedAt: now } }, lastState: { terminated: failedRun('x') } }), now }).completed).to.equal(false);
  });

  it('a pod that failed (restartPolicy Never) fails at once; without a message the exit code is the reason; one failed before any run says why', () => {
    const p = restoreProgress(op, { pod: pod({ state: { terminated: { exitCode: 137, reason: 'OOMKilled' } } }, { phase: 'Failed' }), now });
    expect(p.completed).to.equal(true);
    expect(p.err).to.match(/failed 1 time\(s\), last: exit code 137 \(OOMKilled\); the pod has failed;/);
    const evicted = restoreProgress(op, { pod: pod({ state: { waiting: { reason: 'PodInitializing' } } }, { phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: ephemeral-storage.' }), now });
    expect(evicted.err).to.equal(
      'pod monitoring/vmsingle-5d4f8b7c9-x2x9q: has failed (Evicted: The node was low on resource: ephemeral-storage.) before its init container victoria-restore had restored its Victoria data; delete the workload and restore again (docs/velero-restore.md, runbook)',
    );
  });

  it('a pod that is gone, being deleted, or not the one this restore made fails the operation, saying the data was not restored', () => {
    expect(restoreProgress(op, { pod: undefined, now }).err).to.match(/^pod monitoring\/vmsingle-5d4f8b7c9-x2x9q: does not exist: Velero could not create it \(`error restoring pods\/monitoring\/vmsingle-5d4f8b7c9-x2x9q` in velero restore describe.*, or it was deleted before its init container victoria-restore had restored its Victoria data .* restore again/);
    const deleting = pod({ state: { running: { startedAt: started } } });
    deleting.metadata!.deletionTimestamp = now;
    expect(restoreProgress(op, { pod: deleting, now }).err).to.match(/: is being deleted before/);
    const other = restoreProgress(op, { pod: pod({ state: { running: {} } }, {}, 'b'.repeat(64)), now });
    expect(other).to.include({ completed: true });
    expect(other.err).to.match(/it is not the pod this restore created: it has no init container victoria-restore with this restore's plan/);
  });

  it('never passes on a signed URL or a credential from what the init container printed', () => {
    const leaky = pod({ state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: failedRun('GET https://s3/b/o?X-Amz-Signature=abc123 failed') } });
    const running = restoreProgress(op, { pod: leaky, now, lastLogLine: 'x' });
    expect(running.description).to.contain('X-Amz-Signature=REDACTED').and.not.contain('abc123');
    const long = restoreProgress(op, { pod: pod({ state: { running: {} } }), lastLogLine: 'y'.repeat(5000), now });
    expect(long.description).to.equal(`victoria-restore running: ${'y'.repeat(MAX_QUOTE - 1)}…`);
  });
});
