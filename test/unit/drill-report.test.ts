/** What a drill says of a restored pod that holds the Restore up (src/actions/drill-report.ts). */
import { expect } from 'chai';
import { podState } from '../../src/actions/drill-report.js';

const pod = (status: Record<string, unknown>) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'vm-0' }, status }) as Parameters<typeof podState>[0];

describe('drill pod state', () => {
  it('names the first thing that holds the pod up, with the container\'s own words', () => {
    expect(podState(pod({ phase: 'Running', containerStatuses: [{ name: 'victoria-metrics', ready: true, state: { running: {} } }] }))).to.equal('Running');
    expect(podState(pod({}))).to.equal('Pending');
    expect(
      podState(pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector." }] })),
    ).to.equal("Pending: not scheduled: 0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.");
    // The restore still downloading: the init container runs, the database waits for it.
    expect(
      podState(pod({
        phase: 'Pending',
        initContainerStatuses: [{ name: 'victoria-restore', ready: false, state: { running: {} } }],
        containerStatuses: [{ name: 'victoria-metrics', ready: false, state: { waiting: { reason: 'PodInitializing' } } }],
      })),
    ).to.equal('Pending: init container victoria-restore running');
    expect(podState(pod({ phase: 'Failed', initContainerStatuses: [{ name: 'victoria-restore', state: { terminated: { exitCode: 3, reason: 'Error', message: 'sha256 mismatch\n  in data/x' } } }] }))).to.equal(
      'Failed: init container victoria-restore exited 3 (Error): sha256 mismatch in data/x',
    );
    // Past the init containers (done: exit 0), the database that starts and does not become ready.
    expect(
      podState(pod({
        phase: 'Running',
        initContainerStatuses: [{ name: 'victoria-restore', state: { terminated: { exitCode: 0, reason: 'Completed' } } }],
        containerStatuses: [{ name: 'victoria-metrics', ready: false, state: { running: {} } }, { name: 'victoria-companion', ready: true, state: { running: {} } }],
      })),
    ).to.equal('Running: container victoria-metrics running, not ready');
    expect(
      podState(pod({ phase: 'Pending', initContainerStatuses: [{ name: 'victoria-restore', state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "registry/plugin:1"' } } }] })),
    ).to.equal('Pending: init container victoria-restore waiting: ImagePullBackOff (Back-off pulling image "registry/plugin:1")');
  });

  it('keeps a long message to a line of 300 characters', () => {
    const state = podState(pod({ phase: 'Pending', initContainerStatuses: [{ name: 'victoria-restore', state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { exitCode: 1, message: 'x'.repeat(4000) } } }] }));
    expect(state).to.equal(`Pending: init container victoria-restore waiting: CrashLoopBackOff; last exit 1: ${'x'.repeat(300)}…`);
  });
});
