import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { executePodBackup, failureText } from '../../src/actions/backup-pod.js';
import type { Logger } from '../../src/velero/log.js';

describe('pod backup: what failed the item', () => {
  const timeout = new Error('the backup took longer than itemTimeoutSeconds (10 s) and was stopped');
  const timedOut = () => {
    const c = new AbortController();
    c.abort(timeout);
    return c.signal;
  };

  it('a failure within the time limit is its own message', () => {
    expect(failureText(new Error('S3 AccessDenied'), new AbortController().signal)).to.equal('S3 AccessDenied');
  });

  it('the timeout in its own words when it caused the failure', () => {
    expect(failureText(timeout, timedOut())).to.equal(timeout.message);
    expect(failureText(new Error(`exec stopped: ${timeout.message}`), timedOut())).to.equal(timeout.message);
  });

  it('a failure of its own that the time limit overtook during the clean-up keeps its message', () => {
    expect(failureText(new Error('S3 AccessDenied'), timedOut())).to.equal(`${timeout.message}; the error it ended with: S3 AccessDenied`);
  });
});

describe('pod backup: a Kubernetes configuration that does not load', () => {
  const saved = { KUBECONFIG: process.env.KUBECONFIG };
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'backup-pod-'));
    process.env.KUBECONFIG = join(dir, 'missing-kubeconfig');
  });
  after(() => {
    if (saved.KUBECONFIG === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved.KUBECONFIG;
    rmSync(dir, { recursive: true, force: true });
  });

  it('fails the item with the prefix of every other failure of it, naming the pod and the backup', async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { namespace: 'monitoring', name: 'vm-0', labels: { 'velero-plugin-victoria.io/kind': 'metrics' } },
      status: { phase: 'Running' },
    };
    const backup = { metadata: { name: 'b1', namespace: 'velero' }, spec: { storageLocation: 'default' }, status: { phase: 'InProgress' } };
    const quiet = (): void => undefined;
    const log: Logger = { trace: quiet, debug: quiet, info: quiet, warn: quiet, error: quiet, with: () => log };
    const err = await executePodBackup({ item: pod, itemBytes: Buffer.from(JSON.stringify(pod)), backup: Buffer.from(JSON.stringify(backup)) }, { log }).then(
      () => expect.fail('expected the item to fail'),
      (e: unknown) => e as Error,
    );
    expect(err.message).to.match(new RegExp(`^pod monitoring/vm-0: Victoria data NOT backed up in b1: cannot load kubeconfig ${process.env.KUBECONFIG}: `));
  });
});
