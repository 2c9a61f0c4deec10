import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { executePodBackup, failureText, passedOverLines, progressLogger } from '../../src/actions/backup-pod.js';
import type { Progress } from '../../src/engine/progress.js';
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

describe('pod backup: progress lines', () => {
  it('one line per progressIntervalSeconds with the upload rate since the line before, and what a backup waits for while the database counts', async () => {
    const lines: Array<{ message: string; fields: unknown }> = [];
    const log = { info: (message: string, fields?: unknown) => lines.push({ message, fields }) } as unknown as Logger;
    const fields = { namespace: 'monitoring', name: 'vm-0', backup: 'velero/daily-1' };
    const config = { progressIntervalMs: 100, countTimeoutMs: 1_800_000 } as Parameters<typeof progressLogger>[0]['config'];
    const report = progressLogger({ config, ctx: { log } as Parameters<typeof progressLogger>[0]['ctx'], podId: 'pod monitoring/vm-0', fields });
    const MiB = 1024 * 1024;
    const at = (phase: Progress['phase'], uploaded: number, copied: number): Progress => ({ phase, filesDone: 2, filesTotal: 5, bytesDone: uploaded + copied, bytesTotal: 64 * MiB, bytesUploaded: uploaded, bytesCopied: copied });
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    report(at('uploading', 0, 0)); // within the first interval: no line
    await sleep(110);
    report(at('uploading', 4 * MiB, 32 * MiB));
    await sleep(110);
    report(at('counting', 4 * MiB, 32 * MiB));
    expect(lines.map((l) => l.fields)).to.deep.equal([fields, fields]);
    expect(lines[0]!.message).to.match(/^pod monitoring\/vm-0: uploading: 2\/5 files, 36\.0 MiB of 64\.0 MiB \(4\.0 MiB uploaded, 32\.0 MiB copied server-side\), uploading at [\d.]+ MiB\/s$/);
    // 4 MiB in about 0.2 s: the copied 32 MiB are not part of the rate.
    const rate = Number(/uploading at ([\d.]+) MiB\/s$/.exec(lines[0]!.message)?.[1]);
    expect(rate).to.be.within(10, 40);
    expect(lines[1]!.message).to.equal(
      "pod monitoring/vm-0: counting (waiting for the database's count; countTimeoutSeconds: 1800): 2/5 files, 36.0 MiB of 64.0 MiB (4.0 MiB uploaded, 32.0 MiB copied server-side), uploading at 0 B/s",
    );
  });
});

describe('pod backup: backups passed over as the base', () => {
  const pod = 'pod monitoring/vm-0';
  it('denied ones are a warning; archived ones (a lifecycle rule) are info while a readable base is left, else a warning', () => {
    expect(passedOverLines(pod, [], [], true)).to.deep.equal([]);
    expect(passedOverLines(pod, ['b2 (access denied)'], ['b0 (InvalidObjectState)', 'b1 (InvalidObjectState)'], true)).to.deep.equal([
      { level: 'warn', text: 'pod monitoring/vm-0: 1 backup(s) of this workload cannot be read, passed over as the base of this backup and not restorable from here: b2 (access denied)' },
      { level: 'info', text: 'pod monitoring/vm-0: 2 backup(s) of this workload are in an archive storage class (a lifecycle rule), passed over as the base of this backup; restoring one needs S3 RestoreObject first: b0 (InvalidObjectState); b1 (InvalidObjectState)' },
    ]);
    const [alone] = passedOverLines(pod, [], ['b1 (InvalidObjectState)'], false);
    expect(alone?.level).to.equal('warn');
    expect(alone?.text).to.match(/b1 \(InvalidObjectState\)\. No readable backup is left to copy from, so this one uploads everything: keep lifecycle transitions off the newest backups$/);
  });
});
