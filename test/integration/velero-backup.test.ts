/**
 * Backups through Velero, end to end: the Go go-plugin host (as Velero) calls the built
 * executable's actions with realistic Backup and Pod JSON; the plugin reads the
 * BackupStorageLocation, its Secret and its ConfigMap from the Kubernetes API stand-in and execs
 * the built companion through it (WebSocket exec), against a real VictoriaMetrics 1.145 and the
 * VictoriaLogs test server; the data lands in moto (authenticated). What matters is checked:
 * objects only under plugins/, stock vmrestore restores the same counts, the second backup
 * uploads only new files, deletion removes exactly one backup, and every failure fails the item
 * clearly with no complete marker and no leftover snapshot.
 */
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RECORD_ANNOTATION } from '../../src/actions/record.js';
import { processStartTime } from '../../src/companion/state-lock.js';
import { MetricsSource, LogsSource } from '../../src/victoria/index.js';
import { freePort } from '../../src/victoria/local-server.js';
import { paths, requireComponents } from '../support/components.js';
import { KubeApiServer, putS3Location, type KubeObject } from '../support/kube-api.js';
import { startMoto, type Moto } from '../support/moto.js';
import { runCommand, type CommandResult } from '../support/run-command.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { makeTestTls } from '../support/tls.js';
import { callAction, type CallResult } from '../support/velero-host.js';
import { startVictoriaMetrics, type ImportedData, type VmServer } from '../support/victoria-metrics.js';
import { startVictoriaLogs, type IngestedLogs, type VlServer } from '../support/victorialogs.js';

const NS = 'monitoring';
const COMPANION = 'victoria-companion';
const BSL_PREFIX = 'cluster-a';

interface PodSpec {
  name: string;
  kind: 'metrics' | 'logs';
  deployment: string;
  companion?: boolean;
}

function podObject(p: PodSpec): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: p.name,
      namespace: NS,
      uid: `uid-${p.name}`,
      labels: { app: p.deployment, 'velero-plugin-victoria.io/kind': p.kind },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${p.deployment}-5d4f8b7c9`, uid: `rs-${p.deployment}`, controller: true }],
    },
    // As velero/components make it: the database's hostPath, mounted read-only in the companion at
    // /victoria-data (the companions here run on this machine with VICTORIA_DATA_DIR instead).
    spec: {
      containers: [
        { name: p.kind === 'metrics' ? 'victoria-metrics' : 'victoria-logs', image: 'victoriametrics/victoria-metrics', volumeMounts: [{ name: 'data', mountPath: '/storage' }] },
        ...(p.companion === false
          ? []
          : [
              {
                name: COMPANION,
                image: 'velero-plugin-victoria',
                volumeMounts: [{ name: 'data', mountPath: '/victoria-data', readOnly: true }],
                env: [{ name: 'VICTORIA_AUTH_KEY', valueFrom: { secretKeyRef: { name: `${p.deployment}-backup-auth`, key: 'authKey', optional: true } } }],
                envFrom: [{ configMapRef: { name: `${p.deployment}-companion` } }],
              },
            ]),
      ],
      serviceAccountName: p.deployment,
      volumes: [{ name: 'data', hostPath: { path: `/mnt/db1/${p.deployment}`, type: 'DirectoryOrCreate' } }],
    },
    status: { phase: 'Running' },
  };
}

function backupObject(name: string, phase = 'InProgress', labels: Record<string, string> = {}): KubeObject {
  return {
    apiVersion: 'velero.io/v1',
    kind: 'Backup',
    metadata: { name, namespace: 'velero', uid: `uid-${name}`, labels },
    spec: { storageLocation: 'default', includedNamespaces: [NS], ttl: '720h0m0s' },
    status: { phase, startTimestamp: new Date(Date.now() - 1000).toISOString(), version: 1 },
  };
}

describe('Velero backups end to end: Go host → plugin → stand-in API → companion → moto', function () {
  let moto: Moto;
  let api: KubeApiServer;
  let vm: VmServer;
  let vl: VlServer;
  let env: NodeJS.ProcessEnv;
  let imported: ImportedData;
  let ingested: IngestedLogs;
  const companionEnv = new Map<string, Record<string, string>>();

  const keysUnder = (prefix: string) => moto.keys(prefix);
  const folder = (deployment: string, backup: string) => `${BSL_PREFIX}/plugins/victoria/${NS}/${deployment}/${backup}/`;
  const manifestOf = async (deployment: string, backup: string) => {
    const res = await moto.client.send(new GetObjectCommand({ Bucket: moto.bucket, Key: `${folder(deployment, backup)}victoria_manifest.ignore` }));
    return JSON.parse(await res.Body!.transformToString()) as { counts: Record<string, number>; durationSeconds: number; totals: { bytes: number; bytesUploaded: number; bytesCopied: number }; trees: Array<{ prefix: string }> };
  };

  /** Registers a pod (and its ReplicaSet/Deployment) whose companion runs the built executable with `companion`. */
  function addPod(p: PodSpec, companion: Record<string, string>): KubeObject {
    const pod = api.put(podObject(p));
    api.put({ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: `${p.deployment}-5d4f8b7c9`, namespace: NS, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: p.deployment, controller: true }] } });
    api.put({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: p.deployment, namespace: NS, labels: { 'velero-plugin-victoria.io/kind': p.kind } },
      spec: { replicas: 1, selector: { matchLabels: { app: p.deployment } } },
    });
    const state = mkdtempSync(join(tmpdir(), 'companion-state-'));
    companionEnv.set(p.name, { ...companion, COMPANION_STATE_DIR: state });
    api.onExec(NS, p.name, COMPANION, (command) => {
      if (command[0] !== '/plugins/velero-plugin-victoria') return undefined;
      return { file: paths.plugin, args: command.slice(1), env: { PATH: process.env.PATH ?? '', ...companionEnv.get(p.name)! } };
    });
    return pod;
  }

  /** Restores vmsingle's backup with stock vmrestore 1.145, starts VictoriaMetrics on the copy and hands `check` its URL. */
  async function withVmrestored(ctx: Mocha.Context, backup: string, check: (url: string) => Promise<void>): Promise<void> {
    const restored = mkdtempSync(join(tmpdir(), `e2e-vmrestore-${backup}-`));
    try {
      const vr = await runCommand(
        paths.vmrestore145,
        ['-httpListenAddr=127.0.0.1:0', `-src=s3://${moto.bucket}/${folder('vmsingle', backup)}`, `-storageDataPath=${restored}`, `-customS3Endpoint=${moto.endpoint}`, '-s3ForcePathStyle'],
        { ...process.env, AWS_ACCESS_KEY_ID: moto.accessKeyId, AWS_SECRET_ACCESS_KEY: moto.secretAccessKey, AWS_REGION: moto.region },
      );
      expect(vr.status, vr.stderr).to.equal(0);
      const copy = await startVictoriaMetrics(ctx, { version: '1.145', dataDir: restored });
      try {
        await check(copy.url);
      } finally {
        await copy.stop();
      }
    } finally {
      rmSync(restored, { recursive: true, force: true });
    }
  }

  /** Runs a companion hook as Velero's hook executor would (an exec in the companion container). */
  function hook(pod: string, which: 'pre' | 'post'): Promise<CommandResult> {
    return runCommand(paths.plugin, ['companion', 'hook', which], { PATH: process.env.PATH ?? '', ...companionEnv.get(pod)! });
  }

  const backupPod = (pod: KubeObject, backup: string, extraEnv: NodeJS.ProcessEnv = {}, labels: Record<string, string> = {}) =>
    callAction(paths.plugin, { call: 'backup', pluginName: 'velero-plugin-victoria.io/pod-backup', item: pod, backup: backupObject(backup, 'InProgress', labels), env: { ...env, ...extraEnv } });
  const messages = (r: CallResult, level?: string) => r.logs.filter((l) => !level || l['@level'] === level).map((l) => String(l['@message']));
  /**
   * A workload check that found data missing: the item stays in the backup, unchanged (Velero would
   * leave a failed item out), and one error line names it, which Velero counts against the backup.
   */
  const expectCheckError = (r: CallResult, workload: KubeObject, text: string | RegExp) => {
    expect(r.ok, r.error).to.equal(true);
    expect(r.item).to.deep.equal(workload);
    expect(r.operationID ?? '').to.equal('');
    const errors = r.logs.filter((l) => l['@level'] === 'error');
    expect(errors, JSON.stringify(r.logs)).to.have.length(1);
    if (typeof text === 'string') expect(String(errors[0]!['@message'])).to.contain(text);
    else expect(String(errors[0]!['@message'])).to.match(text);
    expect(errors[0]).to.include({ namespace: NS, name: workload.metadata!.name, resource: `${workload.kind.toLowerCase()}s.apps` });
  };

  before(async function () {
    requireComponents(this, paths.plugin, paths.veleroHost, paths.vm145, paths.vmrestore145, paths.victoriaLogsServer, paths.motoServer);
    moto = await startMoto();
    api = await new KubeApiServer().listen();
    vm = await startVictoriaMetrics(this, { version: '1.145', snapshotAuthKey: 'snap-key' });
    imported = await vm.importSeries(40, 300);
    vl = await startVictoriaLogs(this, { authKey: 'pm-key' });
    ingested = await vl.ingest(2000, 2);
    putS3Location(api, { ...moto, prefix: BSL_PREFIX });
    api.put({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'velero-plugin-victoria', namespace: 'velero', labels: { 'velero.io/plugin-config': '', 'velero-plugin-victoria.io/pod-backup': 'BackupItemAction' } },
      data: { execTimeoutSeconds: '60', streamIdleTimeoutSeconds: '20', progressIntervalSeconds: '1' },
    });
    env = { KUBECONFIG: api.writeKubeconfig(), VELERO_NAMESPACE: 'velero', AWS_SHARED_CREDENTIALS_FILE: '', AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' };
    addPod({ name: 'vmsingle-5d4f8b7c9-x2x9q', kind: 'metrics', deployment: 'vmsingle' }, { VICTORIA_KIND: 'metrics', VICTORIA_URL: vm.url, VICTORIA_DATA_DIR: vm.dataDir, VICTORIA_AUTH_KEY: 'snap-key' });
    addPod({ name: 'vlogs-5d4f8b7c9-k2m4p', kind: 'logs', deployment: 'vlogs' }, { VICTORIA_KIND: 'logs', VICTORIA_URL: vl.url, VICTORIA_DATA_DIR: vl.dataDir, VICTORIA_AUTH_KEY: 'pm-key' });
  });
  after(async () => {
    await vm?.stop();
    await vl?.stop();
    await api?.close();
    await moto?.stop();
  });

  const vmPod = () => api.get('v1', 'Pod', NS, 'vmsingle-5d4f8b7c9-x2x9q')!;
  const vlPod = () => api.get('v1', 'Pod', NS, 'vlogs-5d4f8b7c9-k2m4p')!;
  let firstItem: KubeObject;

  it('with the pre/post hooks: the pod action uploads under plugins/ only, records it, hands Velero what the pod needs to start, and stock vmrestore restores the same counts', async function () {
    const expected = await new MetricsSource({ url: vm.url }).counts();
    expect(expected).to.deep.equal({ kind: 'metrics', series: imported.series, samples: imported.samples });
    const pre = await hook(vmPod().metadata.name!, 'pre');
    expect(pre.status, pre.stderr).to.equal(0);
    const res = await backupPod(vmPod(), 'b1');
    const post = await hook(vmPod().metadata.name!, 'post');
    expect(post.status, post.stderr).to.equal(0);
    expect(res.ok, res.error).to.equal(true);
    expect(res.logViolations ?? []).to.deep.equal([]);
    expect(messages(res, 'warn'), 'no warnings when the hooks ran').to.deep.equal([]);
    expect(messages(res, 'info').join('\n')).to.match(/backup complete: \d+ files/);
    // The plugin's `backup` field replaces Velero's own on its lines, so it has Velero's form.
    const backupFields = new Set(res.logs.filter((l) => 'backup' in l).map((l) => l.backup));
    expect([...backupFields]).to.deep.equal(['velero/b1']);
    firstItem = res.item as KubeObject;
    // Its ServiceAccount and the ConfigMap it requires, whatever the Backup's label selector; not the optional auth-key Secret.
    expect(res.additionalItems).to.deep.equal([
      { group: '', resource: 'configmaps', namespace: NS, name: 'vmsingle-companion' },
      { group: '', resource: 'serviceaccounts', namespace: NS, name: 'vmsingle' },
    ]);
    const record = JSON.parse((firstItem.metadata.annotations as Record<string, string>)[RECORD_ANNOTATION]!);
    expect(record).to.include({ bucket: moto.bucket, prefix: `${BSL_PREFIX}/plugins/victoria/${NS}/vmsingle`, name: 'b1', kind: 'metrics', workload: 'Deployment/vmsingle' });
    expect(JSON.stringify(record)).not.to.match(/secret|X-Amz|Signature/i);

    const all = await keysUnder('');
    expect(all.filter((k) => !k.startsWith(`${BSL_PREFIX}/plugins/`)), 'objects outside plugins/').to.deep.equal([]);
    expect(all).to.include(`${folder('vmsingle', 'b1')}victoria_complete.ignore`);
    expect((await new MetricsSource({ url: vm.url, authKey: 'snap-key' }).list()).length, 'no snapshot left').to.equal(0);
    expect((await manifestOf('vmsingle', 'b1')).counts).to.deep.equal({ series: expected.kind === 'metrics' ? expected.series : -1, samples: expected.kind === 'metrics' ? expected.samples : -1 });

    await withVmrestored(this, 'b1', async (url) => {
      expect(await new MetricsSource({ url }).counts()).to.deep.equal(expected);
    });
  });

  it('without hooks: the plugin runs them itself (and warns); the second backup uploads only the new files, at maxBytesPerSecond; a companion without the data mount is warned about', async () => {
    await vm.importSeries(2, 300, { metric: 'vpv_e2e_new' });
    const config = api.get('v1', 'ConfigMap', 'velero', 'velero-plugin-victoria')!;
    api.put({ ...config, data: { ...(config.data as Record<string, string>), maxBytesPerSecond: '64KiB' } });
    // The companion's mount at /victoria-data is how a restore finds the data volume.
    const unmounted = structuredClone(vmPod());
    const containers = (unmounted.spec as { containers: Array<{ name: string; volumeMounts?: unknown[] }> }).containers;
    delete containers.find((c) => c.name === COMPANION)!.volumeMounts;
    let res: CallResult;
    try {
      res = await backupPod(unmounted, 'b2');
    } finally {
      api.put(config);
    }
    expect(res.ok, res.error).to.equal(true);
    const warnings = messages(res, 'warn').join('\n');
    expect(warnings).to.match(/no pre hook made snapshots/);
    expect(warnings).to.contain(
      `pod ${NS}/vmsingle-5d4f8b7c9-x2x9q: container "${COMPANION}" mounts no volume at /victoria-data (its mounts: none): mount the database's data volume there (velero/components/), ` +
        'so that the restore knows where the data goes. The data is backed up, but a Velero restore of backup b2 cannot place it: restore it by hand with ' +
        '`velero-plugin-victoria restore` (docs/cli.md), and fix the pod for the next backups',
    );
    const m = await manifestOf('vmsingle', 'b2');
    expect(m.totals.bytesCopied).to.be.greaterThan(0);
    expect(m.totals.bytesUploaded).to.be.lessThan(m.totals.bytes / 2);
    expect(m.durationSeconds).to.be.at.least(m.totals.bytesUploaded / 65_536 - 0.06);
    expect((await new MetricsSource({ url: vm.url, authKey: 'snap-key' }).list()).length, 'the plugin ran the post hook').to.equal(0);
  });

  it('a pre hook the plugin runs itself may take longer than execTimeoutSeconds: here it waits for the companion\'s lock', async () => {
    const config = api.get('v1', 'ConfigMap', 'velero', 'velero-plugin-victoria')!;
    api.put({ ...config, data: { ...(config.data as Record<string, string>), execTimeoutSeconds: '1' } });
    // A live holder of the state lock (as a hook run by hand would be) for about 3 s.
    const holder = spawn('sleep', ['3']);
    const started = await processStartTime(holder.pid!);
    writeFileSync(join(companionEnv.get(vmPod().metadata.name!)!.COMPANION_STATE_DIR!, 'lock'), `${holder.pid} ${started} hook pre\n`);
    let res: CallResult;
    const t0 = Date.now();
    try {
      res = await backupPod(vmPod(), 'b-slow-pre');
    } finally {
      api.put(config);
      holder.kill();
    }
    expect(res.ok, res.error).to.equal(true);
    expect(Date.now() - t0, 'the pre hook waited for the lock').to.be.greaterThan(2500);
    expect(messages(res, 'warn').join('\n')).to.match(/no pre hook made snapshots/);
    expect((await manifestOf('vmsingle', 'b-slow-pre')).totals.bytes).to.be.greaterThan(0);
    expect((await new MetricsSource({ url: vm.url, authKey: 'snap-key' }).list()).length, 'the plugin ran the post hook').to.equal(0);
  });

  it("snapshots an earlier backup's pre hook left (its post hook never ran) are not taken for this backup", async () => {
    const name = vmPod().metadata.name!;
    const source = new MetricsSource({ url: vm.url, authKey: 'snap-key' });
    const pre = await hook(name, 'pre');
    try {
      expect(pre.status, pre.stderr).to.equal(0);
      const stale = (await source.list()).map((s) => s.name);
      expect(stale, 'the pre hook made a snapshot').to.have.length(1);
      // A backup that starts later than the record allows: the set is an earlier backup's.
      const later = backupObject('b-stale');
      (later.status as { startTimestamp: string }).startTimestamp = new Date(Date.now() + 6 * 60_000).toISOString();
      const res = await callAction(paths.plugin, { call: 'backup', pluginName: 'velero-plugin-victoria.io/pod-backup', item: vmPod(), backup: later, env });
      expect(res.ok, res.error).to.equal(true);
      expect(messages(res, 'warn').join('\n')).to.match(/the recorded snapshots \(\S+\) are older than backup b-stale: an earlier backup's post hook did not run/);
      const manifest = (await manifestOf('vmsingle', 'b-stale')) as unknown as { source: { snapshots: string[] } };
      expect(manifest.source.snapshots).to.have.length(1);
      expect(manifest.source.snapshots, 'a fresh snapshot, not the stale one').not.to.include(stale[0]);
      expect(await source.list(), 'the plugin removed both sets').to.deep.equal([]);
    } finally {
      await source.delete(await source.list());
    }
  });

  it("a pod an earlier restore gave our init container is stored without it (its signed plan URL stays out of the backup); other init containers stay", async () => {
    const restored = structuredClone(vmPod());
    const planUrl = 'https://bkt.s3.example/velero/plugins/victoria/_restore-plans/r1/vmsingle.json?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=0123abcd';
    const theirs = { name: 'init-perms', image: 'busybox', command: ['sh', '-c', 'true'] };
    (restored.spec as Record<string, unknown>).initContainers = [
      theirs,
      { name: 'victoria-restore', image: 'velero-plugin-victoria', command: ['/plugins/velero-plugin-victoria', 'restore', '--plan-url', planUrl, '--plan-sha256', 'ab'.repeat(32), '--data-dir', '/victoria-data'] },
    ];
    const res = await backupPod(restored, 'b-restored');
    expect(res.ok, res.error).to.equal(true);
    const item = res.item as KubeObject;
    expect((item.spec as { initContainers?: unknown[] }).initContainers).to.deep.equal([theirs]);
    expect(JSON.stringify(item)).not.to.contain('X-Amz-Signature');
    expect(item.metadata!.annotations).to.have.property(RECORD_ANNOTATION);
  });

  it('VictoriaLogs: every partition is captured as its own tree with its row counts', async () => {
    const days = Object.keys(ingested.perDay);
    expect(days).to.have.length(2);
    const res = await backupPod(vlPod(), 'b2');
    expect(res.ok, res.error).to.equal(true);
    const m = await manifestOf('vlogs', 'b2');
    expect(m.trees.map((t) => t.prefix).sort()).to.deep.equal(days.map((d) => `partitions/${d}/`));
    expect(m.counts).to.deep.equal({ rows: ingested.rows, ...Object.fromEntries(days.map((d) => [`rows.${d}`, ingested.perDay[d]])) });
    expect((await new LogsSource({ url: vl.url, authKey: 'pm-key' }).list()).length, 'no snapshot left').to.equal(0);
  });

  it('the workload check passes a captured Deployment and fails one whose data is not in the backup, naming it', async () => {
    const deployment = api.get('apps/v1', 'Deployment', NS, 'vmsingle')!;
    const check = (backup: string) => callAction(paths.plugin, { call: 'backup', pluginName: 'velero-plugin-victoria.io/workload-check', item: deployment, backup: backupObject(backup), env });
    const ok = await check('b2');
    expect(ok.ok, ok.error).to.equal(true);
    expect(ok.operationID).to.match(/^workload-check:/);
    expect(ok.progress).to.include({ completed: true, err: '' });
    expect(messages(ok, 'info').join('\n')).to.contain('Deployment monitoring/vmsingle: Victoria data of 1 pod(s) is in backup b2');
    // Execute does not look into the bucket: with several item block workers the pod's upload may
    // still run then. Progress, which Velero asks once every item is done, does.
    const missing = await check('never-ran');
    expect(missing.ok, missing.error).to.equal(true);
    expect(missing.progress?.completed).to.equal(true);
    expect(missing.progress?.err).to.equal(
      'Deployment monitoring/vmsingle: its Victoria data is NOT in backup never-ran: no complete backup of it in the bucket (vmsingle/never-ran/): ' +
        "its pod was not captured, its pre hook or its backup failed; see the errors of its pods in namespace monitoring in this backup's log (vmsingle-5d4f8b7c9-x2x9q ran as the backup began)",
    );
    // A StatefulSet with a replica not running: that replica's own data is missing, although another runs.
    const sts = api.put({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'vmha', namespace: NS, labels: { 'velero-plugin-victoria.io/kind': 'metrics' } }, spec: { replicas: 2, selector: { matchLabels: { app: 'vmha' } } } });
    const replica = structuredClone(podObject({ name: 'vmha-0', kind: 'metrics', deployment: 'vmha' }));
    replica.metadata.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'vmha', uid: 'sts-vmha', controller: true }];
    api.put(replica);
    try {
      const gap = await callAction(paths.plugin, { call: 'backup', pluginName: 'velero-plugin-victoria.io/workload-check', item: sts, backup: backupObject('b2'), env });
      expectCheckError(
        gap,
        sts,
        'StatefulSet monitoring/vmha: its Victoria data is NOT in backup b2: pod(s) vmha-1 of its 2 replicas not running, and each replica keeps data of its own: start them and back up again',
      );
    } finally {
      api.remove('v1', 'Pod', NS, 'vmha-0');
      api.remove('apps/v1', 'StatefulSet', NS, 'vmha');
    }
    // A mistyped kind on the workload (the Schedules select any value): refused, naming the label.
    const checkOf = (item: KubeObject) => callAction(paths.plugin, { call: 'backup', pluginName: 'velero-plugin-victoria.io/workload-check', item, backup: backupObject('b2'), env });
    const typo = { ...deployment, metadata: { ...deployment.metadata, labels: { ...deployment.metadata.labels, 'velero-plugin-victoria.io/kind': 'metric' } } };
    expectCheckError(
      await checkOf(typo),
      typo,
      'Deployment monitoring/vmsingle: its Victoria data is NOT in backup b2: its label velero-plugin-victoria.io/kind is "metric"; set it to metrics or logs, on the workload and on its pod template (spec.template.metadata.labels)',
    );
    const pod = api.get('v1', 'Pod', NS, 'vmsingle-5d4f8b7c9-x2x9q')!;
    // Its only pod ended (evicted): nothing runs whose data could be captured.
    api.put({ ...pod, status: { ...(pod.status as object), phase: 'Failed', reason: 'Evicted' } });
    try {
      expectCheckError(
        await check('b2'),
        deployment,
        'Deployment monitoring/vmsingle: its Victoria data is NOT in backup b2: no running pod (1 pod(s), replicas scaled to 0 or not started): start it and back up again',
      );
    } finally {
      api.put(pod);
    }
    // A pod without the companion sidecar.
    const spec = pod.spec as { containers: Array<{ name: string }> };
    api.put({ ...pod, spec: { ...spec, containers: spec.containers.filter((c) => c.name !== COMPANION) } });
    try {
      expectCheckError(
        await check('b2'),
        deployment,
        'Deployment monitoring/vmsingle: its Victoria data is NOT in backup b2: pod vmsingle-5d4f8b7c9-x2x9q has no "victoria-companion" container: add the companion sidecar (velero/components/)',
      );
    } finally {
      api.put(pod);
    }
    // The kind label on the Deployment but not on its pod template: Velero never hands the pod to
    // the pod action, and the check says which label is missing, not that a hook failed.
    const { 'velero-plugin-victoria.io/kind': _kind, ...otherLabels } = pod.metadata.labels as Record<string, string>;
    api.put({ ...pod, metadata: { ...pod.metadata, labels: otherLabels } });
    try {
      expectCheckError(
        await check('b2'),
        deployment,
        'Deployment monitoring/vmsingle: its Victoria data is NOT in backup b2: pod vmsingle-5d4f8b7c9-x2x9q lacks the label velero-plugin-victoria.io/kind=metrics or logs, so the pod action never sees it: ' +
          "add velero-plugin-victoria.io/kind: metrics to the pod template's labels (spec.template.metadata.labels), as velero/components/ do",
      );
    } finally {
      api.put(pod);
    }
    // The finalize pass re-runs the action for the item with the operation: nothing to do then.
    const finalize = await callAction(paths.plugin, { call: 'backup', pluginName: 'velero-plugin-victoria.io/workload-check', item: deployment, backup: backupObject('b2', 'Finalizing'), env });
    expect(finalize.ok, finalize.error).to.equal(true);
    expect(finalize.operationID).to.equal('');
    expect(finalize.item).to.deep.equal(deployment);
  });

  it("a DaemonSet's pod backs up into <daemonset>@<node>, which its next pod on the node continues; the workload check names the nodes whose pod does not run", async () => {
    const ds = api.put({
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'vmds', namespace: NS, labels: { 'velero-plugin-victoria.io/kind': 'metrics' } },
      spec: { selector: { matchLabels: { app: 'vmds' } } },
      status: { desiredNumberScheduled: 1, numberReady: 1 },
    });
    /** A pod of the DaemonSet on `node`, whose companion backs up the test's VictoriaMetrics. */
    const dsPod = (name: string, node: string, phase = 'Running'): KubeObject => {
      const pod = podObject({ name, kind: 'metrics', deployment: 'vmds' });
      pod.metadata.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'vmds', uid: 'ds-vmds', controller: true }];
      (pod.spec as { nodeName?: string }).nodeName = node;
      pod.status = { phase };
      companionEnv.set(name, { VICTORIA_KIND: 'metrics', VICTORIA_URL: vm.url, VICTORIA_DATA_DIR: vm.dataDir, VICTORIA_AUTH_KEY: 'snap-key', COMPANION_STATE_DIR: mkdtempSync(join(tmpdir(), 'companion-state-')) });
      api.onExec(NS, name, COMPANION, (command) => ({ file: paths.plugin, args: command.slice(1), env: { PATH: process.env.PATH ?? '', ...companionEnv.get(name)! } }));
      return api.put(pod);
    };
    const check = (backup: string) => callAction(paths.plugin, { call: 'backup', pluginName: 'velero-plugin-victoria.io/workload-check', item: api.get('apps/v1', 'DaemonSet', NS, 'vmds')!, backup: backupObject(backup), env });
    const first = dsPod('vmds-7xk2p', 'node-a');
    try {
      const res = await backupPod(first, 'b-ds1');
      expect(res.ok, res.error).to.equal(true);
      const record = JSON.parse(((res.item as KubeObject).metadata.annotations as Record<string, string>)[RECORD_ANNOTATION]!);
      expect(record).to.include({ prefix: `${BSL_PREFIX}/plugins/victoria/${NS}/vmds@node-a`, name: 'b-ds1', workload: 'DaemonSet/vmds' });
      expect(await keysUnder(folder('vmds@node-a', 'b-ds1'))).to.include(`${folder('vmds@node-a', 'b-ds1')}victoria_complete.ignore`);
      // The DaemonSet recreates its pod on the node under a new name: the same folder, so the
      // next backup copies what did not change instead of uploading it all again.
      api.remove('v1', 'Pod', NS, 'vmds-7xk2p');
      const next = dsPod('vmds-q9w4t', 'node-a');
      const again = await backupPod(next, 'b-ds2');
      expect(again.ok, again.error).to.equal(true);
      const m = await manifestOf('vmds@node-a', 'b-ds2');
      expect(m.totals.bytesCopied, 'copied from b-ds1').to.be.greaterThan(0);
      expect(m.totals.bytesUploaded).to.be.lessThan(m.totals.bytes / 2);
      const ok = await check('b-ds2');
      expect(ok.ok, ok.error).to.equal(true);
      expect(ok.progress).to.include({ completed: true, err: '' });
      expect(messages(ok, 'info').join('\n')).to.contain('DaemonSet monitoring/vmds: Victoria data of 1 pod(s) is in backup b-ds2');
      // A second node joins: its pod is pending, and a third node has none yet.
      api.put({ ...ds, status: { desiredNumberScheduled: 3, numberReady: 1 } });
      dsPod('vmds-m3n8c', 'node-b', 'Pending');
      expectCheckError(
        await check('b-ds2'),
        api.get('apps/v1', 'DaemonSet', NS, 'vmds')!,
        "DaemonSet monitoring/vmds: its Victoria data is NOT in backup b-ds2: only 1 of the 3 pods it schedules (one per node) are running (not running: vmds-m3n8c on node node-b), and each node's pod keeps that node's data: start them and back up again",
      );
      // Its evicted pod's item says where the node's data went missing.
      const evicted = await backupPod({ ...next, status: { phase: 'Failed', reason: 'Evicted' } }, 'b-ds3');
      expect(evicted.ok, evicted.error).to.equal(true);
      expect(messages(evicted, 'info').join('\n')).to.contain(
        `pod ${NS}/vmds-q9w4t: phase Failed (Evicted), nothing runs in it: not backed up; unless the DaemonSet runs a new pod on its node, that node's data is missing from the backup, which the workload check reports for DaemonSet ${NS}/vmds`,
      );
    } finally {
      for (const name of ['vmds-7xk2p', 'vmds-q9w4t', 'vmds-m3n8c']) api.remove('v1', 'Pod', NS, name);
      api.remove('apps/v1', 'DaemonSet', NS, 'vmds');
    }
  });

  it('the workload check warns, without failing, for a pod the Backup leaves out on purpose, naming the filter', async () => {
    const deployment = api.get('apps/v1', 'Deployment', NS, 'vmsingle')!;
    const check = (backup: KubeObject) => callAction(paths.plugin, { call: 'backup', pluginName: 'velero-plugin-victoria.io/workload-check', item: deployment, backup, env });
    const withSpec = (name: string, spec: Record<string, unknown>): KubeObject => {
      const b = backupObject(name);
      return { ...b, spec: { ...(b.spec as Record<string, unknown>), ...spec } };
    };
    const leftOut = async (backup: KubeObject, why: RegExp) => {
      const r = await check(backup);
      expect(r.ok, r.error).to.equal(true);
      expect(r.operationID, 'no check to wait for').to.equal('');
      expect(messages(r, 'warn').join('\n')).to.match(why);
      expect(messages(r, 'error')).to.deep.equal([]);
    };
    // velero backup create --exclude-resources pods; --include-resources deployments; --selector tier=db
    await leftOut(withSpec('b-no-pods', { excludedResources: ['pods'] }), /^Deployment monitoring\/vmsingle: its Victoria data is NOT in backup b-no-pods: pod vmsingle-5d4f8b7c9-x2x9q is left out: the backup excludes pods \(--include-resources \/ --exclude-resources; take pods out of the exclusions to capture its data\)$/);
    await leftOut(withSpec('b-deployments', { includedResources: ['deployments'] }), /left out: the backup does not include pods/);
    await leftOut(withSpec('b-selector', { labelSelector: { matchLabels: { tier: 'db' } } }), /left out: its labels match none of the backup's label selectors/);
    const pod = api.get('v1', 'Pod', NS, 'vmsingle-5d4f8b7c9-x2x9q')!;
    api.put({ ...pod, metadata: { ...pod.metadata, labels: { ...pod.metadata.labels, 'velero.io/exclude-from-backup': 'true' } } });
    try {
      await leftOut(backupObject('b-label'), /left out: it is labelled velero\.io\/exclude-from-backup=true \(remove the label to capture its data\)/);
    } finally {
      api.put(pod);
    }
    // Pods named by their short name are included: the check runs as usual.
    const included = await check(withSpec('b-po', { includedResources: ['po', 'deployments'] }));
    expect(included.ok, included.error).to.equal(true);
    expect(included.operationID).to.match(/^workload-check:/);
  });

  it('the Backup\'s counts label: false skips the count (and says so), a value other than true/false is named and the ConfigMap decides', async () => {
    const skipped = await backupPod(vmPod(), 'b-label-false', {}, { 'velero-plugin-victoria.io/counts': 'false' });
    expect(skipped.ok, skipped.error).to.equal(true);
    expect((await manifestOf('vmsingle', 'b-label-false')).counts).to.deep.equal({});
    expect(messages(skipped, 'info').join('\n')).to.match(/not counted for drills \(backup label velero-plugin-victoria\.io\/counts=false\): a restore drill of this backup checks checksums only/);
    const odd = await backupPod(vmPod(), 'b-label-odd', {}, { 'velero-plugin-victoria.io/counts': 'no' });
    expect(odd.ok, odd.error).to.equal(true);
    expect(messages(odd, 'warn').join('\n')).to.match(/backup b-label-odd has label velero-plugin-victoria\.io\/counts="no", which is neither "true" nor "false": it is ignored, and the plugin ConfigMap's counts \(true\) decides/);
    expect((await manifestOf('vmsingle', 'b-label-odd')).counts.samples).to.be.greaterThan(0);
  });

  it('a Deployment with two running pods: the pod backup and the workload check fail, naming both, and nothing is written', async () => {
    // Each pod would have its own node's hostPath data, but a Deployment's pods share one folder.
    const second = api.put(podObject({ name: 'vmsingle-5d4f8b7c9-q7w3z', kind: 'metrics', deployment: 'vmsingle' }));
    try {
      const res = await backupPod(vmPod(), 'b-two');
      expect(res.ok).to.equal(false);
      expect(res.error).to.match(/Deployment\/vmsingle has 2 running pods \(.*\), and a Deployment's pods share one data folder in the bucket \(vmsingle\/\): their backups would overwrite each other\. Run it with one replica, or as a StatefulSet/);
      expect(res.error).to.contain('vmsingle-5d4f8b7c9-x2x9q').and.to.contain('vmsingle-5d4f8b7c9-q7w3z');
      expect(await keysUnder(folder('vmsingle', 'b-two'))).to.deep.equal([]);
      const deployment = api.get('apps/v1', 'Deployment', NS, 'vmsingle')!;
      const check = await callAction(paths.plugin, { call: 'backup', pluginName: 'velero-plugin-victoria.io/workload-check', item: deployment, backup: backupObject('b-two'), env });
      expectCheckError(check, deployment, /Deployment monitoring\/vmsingle: its Victoria data is NOT in backup b-two: Deployment\/vmsingle has 2 running pods/);
    } finally {
      api.put({ ...second, status: { phase: 'Succeeded' } });
    }
  });

  it('a pod of another workload whose name maps to the same folder: the backup fails, naming both, and nothing is written', async () => {
    // A bare VictoriaLogs pod named like the VictoriaMetrics Deployment: both would write <ns>/vmsingle/<backup>/.
    const { ownerReferences: _, ...meta } = podObject({ name: 'vmsingle', kind: 'logs', deployment: 'vmsingle' }).metadata as Record<string, unknown>;
    const bare = api.put({ ...podObject({ name: 'vmsingle', kind: 'logs', deployment: 'vmsingle' }), metadata: meta });
    try {
      const res = await backupPod(vmPod(), 'b-same-folder');
      expect(res.ok).to.equal(false);
      expect(res.error).to.contain(
        'Deployment/vmsingle and Pod/vmsingle (pod vmsingle) in namespace monitoring both back up into the folder monitoring/vmsingle/, where each backup would overwrite the other: rename one of them',
      );
      expect(await keysUnder(folder('vmsingle', 'b-same-folder'))).to.deep.equal([]);
    } finally {
      api.remove('v1', 'Pod', NS, bare.metadata!.name!);
    }
  });

  it('the delete action removes the deleted backup only; the incremental made from it still restores whole', async function () {
    const res = await callAction(paths.plugin, { call: 'delete', pluginName: 'velero-plugin-victoria.io/pod-delete', item: firstItem, backup: backupObject('b1'), env });
    expect(res.ok, res.error).to.equal(true);
    expect(await keysUnder(folder('vmsingle', 'b1'))).to.deep.equal([]);
    expect(await keysUnder(folder('vmsingle', 'b2'))).to.include(`${folder('vmsingle', 'b2')}victoria_complete.ignore`);
    expect(await keysUnder(folder('vlogs', 'b2'))).to.include(`${folder('vlogs', 'b2')}victoria_complete.ignore`);
    // b2's unchanged files were server-side copies of b1's: with b1 gone, stock vmrestore still
    // restores b2, and the copy holds what b2 counted, the series added before it included.
    const m = (await manifestOf('vmsingle', 'b2')) as unknown as { counts: { series: number; samples: number }; countedFrom?: string; countedBefore: string };
    await withVmrestored(this, 'b2', async (url) => {
      const range = { end: new Date(m.countedBefore), ...(m.countedFrom ? { start: new Date(m.countedFrom) } : {}) };
      expect(await new MetricsSource({ url }).counts(range)).to.deep.equal({ kind: 'metrics', ...m.counts });
      // An explicit start: VictoriaMetrics 1.145 takes start=0 as none and then looks at the current
      // UTC day only, where data imported an hour ago is missing just after midnight.
      const weekAgo = Math.floor(Date.now() / 1000) - 7 * 86_400;
      const added = (await (await fetch(`${url}/api/v1/series?match[]=vpv_e2e_new&start=${weekAgo}`)).json()) as { data: unknown[] };
      expect(added.data, 'the series imported between b1 and b2').to.have.length(2);
    });
  });

  it("the delete action removes the data from the Backup's location, also when the record names another (after a disaster or a migration)", async () => {
    // The new cluster's location "dr-site" sees the same bucket and prefix; "default" now points elsewhere.
    const res = await backupPod(vmPod(), 'b-dr');
    expect(res.ok, res.error).to.equal(true);
    const item = res.item as KubeObject;
    expect(JSON.parse((item.metadata.annotations as Record<string, string>)[RECORD_ANNOTATION]!).storageLocation).to.equal('default');
    const original = api.get('velero.io/v1', 'BackupStorageLocation', 'velero', 'default')!;
    api.put({ ...structuredClone(original), metadata: { ...original.metadata, name: 'dr-site' } });
    const moved = structuredClone(original);
    (moved.spec as { objectStorage: { prefix: string } }).objectStorage.prefix = 'elsewhere';
    api.put(moved);
    try {
      const backup = backupObject('b-dr', 'Deleting');
      (backup.spec as { storageLocation: string }).storageLocation = 'dr-site';
      const del = await callAction(paths.plugin, { call: 'delete', pluginName: 'velero-plugin-victoria.io/pod-delete', item, backup, env });
      expect(del.ok, del.error).to.equal(true);
      expect(messages(del, 'info').join('\n')).to.contain(`removed s3://${moto.bucket}/${BSL_PREFIX}/plugins/victoria/${NS}/vmsingle/b-dr/`);
      expect(await keysUnder(folder('vmsingle', 'b-dr'))).to.deep.equal([]);
      expect(await keysUnder(folder('vmsingle', 'b2'))).to.include(`${folder('vmsingle', 'b2')}victoria_complete.ignore`);
      // A record that does not point into the plugin folder removes nothing.
      const forged = structuredClone(item);
      const annotations = forged.metadata.annotations as Record<string, string>;
      annotations[RECORD_ANNOTATION] = JSON.stringify({ ...JSON.parse(annotations[RECORD_ANNOTATION]!), prefix: `${BSL_PREFIX}/backups` });
      const refused = await callAction(paths.plugin, { call: 'delete', pluginName: 'velero-plugin-victoria.io/pod-delete', item: forged, backup, env });
      expect(refused.ok).to.equal(false);
      expect(refused.error).to.contain(`is not <location prefix>/plugins/victoria/<namespace>/<workload>: it was not written by this plugin; nothing removed`);
      // The location was edited to point elsewhere: nothing there, and the warning names where the record says the data is.
      const edited = await callAction(paths.plugin, { call: 'delete', pluginName: 'velero-plugin-victoria.io/pod-delete', item, backup: backupObject('b2', 'Deleting'), env });
      expect(edited.ok, edited.error).to.equal(true);
      expect(messages(edited, 'warn').join('\n')).to.contain(
        `nothing of backup b2 was at s3://${moto.bucket}/elsewhere/plugins/victoria/${NS}/vmsingle/b2/, but the backup record says its data went to ` +
          `s3://${moto.bucket}/${BSL_PREFIX}/plugins/victoria/${NS}/vmsingle/b2/ (the storage location was changed since): that data was not removed`,
      );
      expect(await keysUnder(folder('vmsingle', 'b2'))).to.include(`${folder('vmsingle', 'b2')}victoria_complete.ignore`);
    } finally {
      api.put(original);
      api.remove('velero.io/v1', 'BackupStorageLocation', 'velero', 'dr-site');
    }
    // A delete the store refuses: the error says the data stays and how to remove it later.
    const secret = api.get('v1', 'Secret', 'velero', 'cloud-credentials')!;
    api.put({ ...secret, data: { cloud: Buffer.from(`[default]\naws_access_key_id = ${moto.accessKeyId}\naws_secret_access_key = not-the-secret-0123456789\n`).toString('base64') } });
    try {
      const failed = await callAction(paths.plugin, { call: 'delete', pluginName: 'velero-plugin-victoria.io/pod-delete', item: res.item as KubeObject, backup: backupObject('b2', 'Deleting'), env });
      expect(failed.ok).to.equal(false);
      expect(failed.error).to.contain(`pod ${NS}/vmsingle-5d4f8b7c9-x2x9q: the Victoria data of backup b2 was NOT removed from s3://${moto.bucket}/${BSL_PREFIX}/plugins/victoria/${NS}/vmsingle/b2/: `);
      expect(failed.error).to.contain(`; once the location's credentials may delete there, remove it with: velero-plugin-victoria prune --location s3://${moto.bucket}/${BSL_PREFIX} --delete`);
      expect(failed.error).not.to.contain('not-the-secret-0123456789');
    } finally {
      api.put(secret);
    }
    expect(await keysUnder(folder('vmsingle', 'b2'))).to.include(`${folder('vmsingle', 'b2')}victoria_complete.ignore`);
  });

  it('an evicted pod is passed over (info for a workload pod, a warning for a bare one) and nothing is written', async () => {
    const evicted = structuredClone(vmPod());
    evicted.metadata.name = 'vmsingle-5d4f8b7c9-evict';
    evicted.status = { phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: ephemeral-storage.' };
    const res = await backupPod(evicted, 'b-evicted');
    expect(res.ok, res.error).to.equal(true);
    expect(messages(res, 'info').join('\n')).to.contain(`pod ${NS}/vmsingle-5d4f8b7c9-evict: phase Failed (Evicted), nothing runs in it: not backed up; its workload's running pod is backed up instead`);
    expect(messages(res, 'warn')).to.deep.equal([]);
    expect(((res.item as KubeObject | undefined)?.metadata?.annotations as Record<string, string> | undefined)?.[RECORD_ANNOTATION]).to.equal(undefined);
    const replica = structuredClone(evicted);
    replica.metadata.name = 'vmha-1';
    replica.metadata.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'vmha', uid: 'sts-vmha', controller: true }];
    const sts = await backupPod(replica, 'b-evicted');
    expect(sts.ok, sts.error).to.equal(true);
    expect(messages(sts, 'info').join('\n')).to.contain(
      `pod ${NS}/vmha-1: phase Failed (Evicted), nothing runs in it: not backed up; this replica's data is missing from the backup, which the workload check reports for StatefulSet ${NS}/vmha`,
    );
    const bare = structuredClone(evicted);
    bare.metadata.name = 'vm-bare';
    delete bare.metadata.ownerReferences;
    // Restored by the plugin before it was evicted: its signed plan URL is not stored with it.
    const planUrl = `${moto.endpoint}/${moto.bucket}/plan.json?X-Amz-Signature=feedface`;
    (bare.spec as { initContainers?: unknown[] }).initContainers = [
      { name: 'victoria-restore', image: 'velero-plugin-victoria', command: ['/plugins/velero-plugin-victoria', 'restore', '--plan-url', planUrl, '--plan-sha256', 'ab'.repeat(32), '--data-dir', '/victoria-data'] },
      { name: 'chown', image: 'busybox' },
    ];
    const warned = await backupPod(bare, 'b-evicted');
    expect(warned.ok, warned.error).to.equal(true);
    expect(((warned.item as KubeObject).spec as { initContainers?: unknown[] }).initContainers).to.deep.equal([{ name: 'chown', image: 'busybox' }]);
    expect(messages(warned, 'warn').join('\n')).to.contain(`pod ${NS}/vm-bare: phase Failed (Evicted), nothing runs in it: not backed up; start it again and back up again`);
    expect(await keysUnder(folder('vmsingle', 'b-evicted'))).to.deep.equal([]);
    expect(await keysUnder(folder('vm-bare', 'b-evicted'))).to.deep.equal([]);
  });

  it('two item-block workers in one plugin process: the pods back up one at a time by default (maxParallelPodBackups 1), both at once with 2', async () => {
    const config = api.get('v1', 'ConfigMap', 'velero', 'velero-plugin-victoria')!;
    const both = async (backup: string, extra: Record<string, string>) => {
      // New data on both, uploaded at the lowest rate, so that each backup lasts long enough to overlap the other's.
      await vm.importSeries(20, 300, { metric: `vpv_workers_${backup.replace(/\W/g, '_')}` });
      await vl.ingest(2000, 1);
      api.put({ ...config, data: { ...(config.data as Record<string, string>), maxBytesPerSecond: '64KiB', ...extra } });
      try {
        return await callAction(paths.plugin, { call: 'backup', pluginName: 'velero-plugin-victoria.io/pod-backup', item: vmPod(), alsoItems: [vlPod()], backup: backupObject(backup), env });
      } finally {
        api.put(config);
      }
    };
    const order = (r: CallResult) => {
      const lines = messages(r);
      const at = (pod: KubeObject, what: string) => lines.findIndex((l) => l.startsWith(`pod ${NS}/${pod.metadata.name}: ${what}`));
      const pods = [vmPod(), vlPod()];
      return {
        waits: lines.filter((l) => l.includes("waiting for another pod's backup to finish")),
        started: pods.map((p) => at(p, 'backing up ')),
        completed: pods.map((p) => at(p, 'backup complete')),
      };
    };
    for (const [backup, extra] of [['b-workers-1', {}], ['b-workers-2', { maxParallelPodBackups: '2' }]] as const) {
      const res = await both(backup, extra);
      expect([res.ok, ...res.concurrent.map((c) => c.ok)], [res.error, ...res.concurrent.map((c) => c.error)].join('\n')).to.deep.equal([true, true]);
      expect(res.logViolations).to.deep.equal([]);
      for (const deployment of ['vmsingle', 'vlogs']) expect(await keysUnder(folder(deployment, backup)), deployment).to.include(`${folder(deployment, backup)}victoria_complete.ignore`);
      const { waits, started, completed } = order(res);
      expect([...started, ...completed].every((i) => i >= 0), JSON.stringify({ started, completed })).to.equal(true);
      if (backup === 'b-workers-1') {
        expect(waits, 'one pod waited for the other').to.have.length(1);
        expect(waits[0]).to.contain('backs up 1 pod(s) at once (maxParallelPodBackups in the plugin ConfigMap');
        const [first, second] = started[0]! < started[1]! ? [0, 1] : [1, 0];
        expect(started[second], "the second started after the first's end").to.be.greaterThan(completed[first]!);
      } else {
        expect(waits).to.deep.equal([]);
        expect(Math.max(...started), 'both started before either ended').to.be.lessThan(Math.min(...completed));
      }
    }
  });

  for (const [what, fault, error] of [
    ['never answers', { hang: true }, /2 s/],
    ['is cut off', { cutAfterStdoutBytes: 0 }, /ended without an exit status/],
  ] as const) {
    it(`a count that ${what}: the backup completes (after countTimeoutSeconds), with a warning and without counts`, async () => {
      const deployment = `vmnocount${what.length}`;
      const config = api.get('v1', 'ConfigMap', 'velero', 'velero-plugin-victoria')!;
      api.put({ ...config, data: { ...(config.data as Record<string, string>), countTimeoutSeconds: '2' } });
      api.setExecFault({ ...fault, onlyCommand: 'counts' });
      try {
        const res = await backupPod(addPod({ name: `${deployment}-5d4f8b7c9-abcde`, kind: 'metrics', deployment }, companionEnv.get(vmPod().metadata.name!)!), 'c1');
        expect(res.ok, res.error).to.equal(true);
        expect(res.logViolations ?? []).to.deep.equal([]);
        expect(messages(res, 'warn').join('\n')).to.match(/the data is backed up, but the database could not count it \(.*\); a restore drill of this backup checks checksums only/);
        expect(await keysUnder(folder(deployment, 'c1'))).to.include(`${folder(deployment, 'c1')}victoria_complete.ignore`);
        const manifest = (await manifestOf(deployment, 'c1')) as { counts: Record<string, number>; countsError?: string };
        expect(manifest.counts).to.deep.equal({});
        expect(manifest.countsError).to.match(error);
        // The companion's own query limit is the plugin's, not its 5-minute default.
        const counts = api.execs.filter((e) => e.pod === `${deployment}-5d4f8b7c9-abcde` && e.command.includes('counts'));
        expect(counts.map((e) => e.command.slice(-3))).to.deep.equal([['counts', '--timeout', '2s']]);
        expect((await new MetricsSource({ url: vm.url, authKey: 'snap-key' }).list()).length, 'no snapshot left').to.equal(0);
      } finally {
        api.setExecFault(undefined);
        api.put(config);
      }
    });
  }

  it("a failed pod backup ends its count at once, not countTimeoutSeconds later beside the other pod's backup", async () => {
    const config = api.get('v1', 'ConfigMap', 'velero', 'velero-plugin-victoria')!;
    const vmName = vmPod().metadata.name!;
    const vlName = vlPod().metadata.name!;
    // The other pod's backup is slowed down, so that it is still running when this one has failed:
    // new rows give it new files to upload at 64 KiB/s.
    await vl.ingest(2000, 1);
    api.put({ ...config, data: { ...(config.data as Record<string, string>), countTimeoutSeconds: '60', maxParallelPodBackups: '2', maxBytesPerSecond: '64KiB' } });
    api.setExecFault([{ hang: true, onlyCommand: 'counts', onlyPod: vmName }, { cutAfterStdoutBytes: 3000, onlyCommand: 'tar', onlyPod: vmName }]);
    const from = api.execs.length;
    try {
      const res = await callAction(paths.plugin, { call: 'backup', pluginName: 'velero-plugin-victoria.io/pod-backup', item: vmPod(), alsoItems: [vlPod()], backup: backupObject('b-count-ends'), env });
      expect(res.ok, 'the cut stream fails its pod').to.equal(false);
      expect(res.concurrent.map((c) => c.ok), res.concurrent.map((c) => c.error).join('\n')).to.deep.equal([true]);
      const execs = api.execs.slice(from);
      const count = execs.find((e) => e.pod === vmName && e.command.includes('counts'))!;
      const otherEnd = Math.max(...execs.filter((e) => e.pod === vlName).map((e) => e.closedAt ?? Infinity));
      expect(count.closedAt, 'the hung count was closed').to.be.a('number');
      expect(count.closedAt!, 'before the other pod\'s backup ended').to.be.lessThan(otherEnd);
    } finally {
      api.setExecFault(undefined);
      api.put(config);
    }
  });

  it('a location on https: the CA comes from caCertRef (a Secret key) or the inline caCert; without one the item fails naming TLS', async () => {
    const tls = makeTestTls();
    const proxy = await startFaultProxy({ target: moto.endpoint, tls: { key: tls.keyPem, cert: tls.certPem } });
    const bsl = api.get('velero.io/v1', 'BackupStorageLocation', 'velero', 'default')!;
    const spec = bsl.spec as { objectStorage: Record<string, unknown>; config: Record<string, string> };
    const useLocation = (objectStorage: Record<string, unknown>) =>
      api.put({ ...bsl, spec: { ...spec, objectStorage: { ...spec.objectStorage, ...objectStorage }, config: { ...spec.config, s3Url: proxy.endpoint } } });
    api.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's3-ca', namespace: 'velero' }, data: { 'ca.crt': Buffer.from(tls.caPem).toString('base64') } });
    const pod = addPod({ name: 'vmtls-5d4f8b7c9-abcde', kind: 'metrics', deployment: 'vmtls' }, companionEnv.get(vmPod().metadata.name!)!);
    try {
      useLocation({ caCertRef: { name: 's3-ca', key: 'ca.crt' } });
      const byRef = await backupPod(pod, 't1');
      expect(byRef.ok, byRef.error).to.equal(true);
      expect(await keysUnder(folder('vmtls', 't1'))).to.include(`${folder('vmtls', 't1')}victoria_complete.ignore`);

      useLocation({ caCert: Buffer.from(tls.caPem).toString('base64') });
      const inline = await backupPod(pod, 't2');
      expect(inline.ok, inline.error).to.equal(true);
      expect(await keysUnder(folder('vmtls', 't2'))).to.include(`${folder('vmtls', 't2')}victoria_complete.ignore`);

      useLocation({});
      const untrusted = await backupPod(pod, 't3');
      expect(untrusted.ok).to.equal(false);
      expect(untrusted.error).to.match(/TLS verification of https:\/\/127\.0\.0\.1:\d+ failed/);
      expect(untrusted.error).to.match(/NOT backed up/);
    } finally {
      api.put(bsl);
      await proxy.close();
    }
  });

  it('a bucket that throttles: each retry is logged at info, at most once per reason every 10 s, and the summary line counts them all', async () => {
    // The first ListObjectsV2 and the first PutObject answer 503 SlowDown; every retry succeeds.
    const proxy = await startFaultProxy({ target: moto.endpoint, weights: { slowDown503: 1, error500: 0, resetRequest: 0, resetResponse: 0, slow: 0 }, guarantee: ['ListObjectsV2', 'PutObject'] });
    const bsl = api.get('velero.io/v1', 'BackupStorageLocation', 'velero', 'default')!;
    const spec = bsl.spec as { config: Record<string, string> };
    api.put({ ...bsl, spec: { ...spec, config: { ...spec.config, s3Url: proxy.endpoint } } });
    const pod = addPod({ name: 'vmthrottled-5d4f8b7c9-abcde', kind: 'metrics', deployment: 'vmthrottled' }, companionEnv.get(vmPod().metadata.name!)!);
    try {
      const res = await backupPod(pod, 'throttled');
      expect(res.ok, res.error).to.equal(true);
      expect(proxy.counts.faults.slowDown503).to.equal(2);
      const info = messages(res, 'info');
      const podId = `pod ${NS}/vmthrottled-5d4f8b7c9-abcde`;
      const retries = info.filter((m) => m.includes('S3 retry'));
      expect(retries, info.join('\n')).to.have.length(1);
      expect(retries[0]).to.match(new RegExp(`^${podId}: S3 retry: attempt 1 of 10 failed \\(SlowDown, HTTP 503\\), next attempt (at once|in \\d+ ms)$`));
      expect(info.find((m) => m.includes('backup complete'))).to.match(/SHA-256 of every file recorded; S3 retries: 2 \(SlowDown: 2\)$/);
    } finally {
      api.put(bsl);
      await proxy.close();
    }
  });

  describe('failures: a clear item error, no complete marker (no objects at all unless files were finished), no leftover snapshot', () => {
    const expectFailed = async (res: CallResult, backup: string, deployment: string, pattern: RegExp) => {
      expect(res.ok, `the backup should have failed; log: ${messages(res).join(' | ')}`).to.equal(false);
      expect(res.error, `log: ${JSON.stringify(res.logs.slice(-6))} stderr: ${(res.stderrOther ?? []).join(" / ")}`).to.match(pattern);
      expect(res.error).to.match(/NOT backed up|NOT in backup/);
      // Nothing at all: a failed item is not in Velero's backup, so no delete action would ever remove its objects.
      expect(await keysUnder(folder(deployment, backup)), 'no objects left of the failed attempt').to.deep.equal([]);
      expect((await new MetricsSource({ url: vm.url, authKey: 'snap-key' }).list()).length, 'no snapshot left').to.equal(0);
    };
    const withCompanionEnv = async (pod: string, change: Record<string, string>, run: () => Promise<void>) => {
      const saved = companionEnv.get(pod)!;
      companionEnv.set(pod, { ...saved, ...change });
      try {
        await run();
      } finally {
        companionEnv.set(pod, saved);
      }
    };

    it('VictoriaMetrics down', async () => {
      const port = await freePort();
      await withCompanionEnv(vmPod().metadata.name!, { VICTORIA_URL: `http://127.0.0.1:${port}` }, async () => {
        await expectFailed(await backupPod(vmPod(), 'f-down'), 'f-down', 'vmsingle', new RegExp(`127\\.0\\.0\\.1:${port}`));
      });
    });

    it('wrong snapshot auth key', async () => {
      await withCompanionEnv(vmPod().metadata.name!, { VICTORIA_AUTH_KEY: 'wrong-key-123' }, async () => {
        const res = await backupPod(vmPod(), 'f-auth');
        await expectFailed(res, 'f-auth', 'vmsingle', /VICTORIA_AUTH_KEY/);
        expect(JSON.stringify(res)).not.to.contain('wrong-key-123');
      });
    });

    it('wrong S3 credentials', async () => {
      const secret = api.get('v1', 'Secret', 'velero', 'cloud-credentials')!;
      const wrong = `[default]\naws_access_key_id = ${moto.accessKeyId}\naws_secret_access_key = not-the-secret-0123456789\n`;
      api.put({ ...secret, data: { cloud: Buffer.from(wrong).toString('base64') } });
      try {
        const res = await backupPod(vmPod(), 'f-s3');
        await expectFailed(res, 'f-s3', 'vmsingle', /SignatureDoesNotMatch|secret access key/i);
        expect(JSON.stringify(res)).not.to.contain('not-the-secret-0123456789');
      } finally {
        api.put(secret);
      }
    });

    it('companion missing', async () => {
      const pod = podObject({ name: 'vmsingle-5d4f8b7c9-nocmp', kind: 'metrics', deployment: 'vmsingle', companion: false });
      await expectFailed(await backupPod(pod, 'f-nocompanion'), 'f-nocompanion', 'vmsingle', /has no container "victoria-companion".*add the companion sidecar/);
    });

    it('a kind label that is neither metrics nor logs', async () => {
      const pod = podObject({ name: 'vmsingle-5d4f8b7c9-badlb', kind: 'metrics', deployment: 'vmsingle' });
      pod.metadata!.labels!['velero-plugin-victoria.io/kind'] = 'metric';
      const res = await backupPod(pod, 'f-label');
      await expectFailed(res, 'f-label', 'vmsingle', /pod monitoring\/vmsingle-5d4f8b7c9-badlb: Victoria data NOT backed up in f-label: label velero-plugin-victoria\.io\/kind is "metric"; set it to metrics or logs$/);
    });

    it('a companion of the other kind than the pod\'s label', async () => {
      const pod = addPod({ name: 'vmkind-5d4f8b7c9-abcde', kind: 'logs', deployment: 'vmkind' }, companionEnv.get(vmPod().metadata.name!)!);
      const res = await backupPod(pod, 'f-kind');
      await expectFailed(res, 'f-kind', 'vmkind', /the companion backs up metrics but the pod's label velero-plugin-victoria\.io\/kind says logs: fix the label or the companion's VICTORIA_KIND/);
    });

    it('no pre hook ran and runHooksIfMissing is false', async () => {
      const config = api.get('v1', 'ConfigMap', 'velero', 'velero-plugin-victoria')!;
      api.put({ ...config, data: { ...(config.data as Record<string, string>), runHooksIfMissing: 'false' } });
      try {
        const res = await backupPod(vmPod(), 'f-nohook');
        await expectFailed(res, 'f-nohook', 'vmsingle', /no snapshot was recorded by a pre hook of this backup .*set runHooksIfMissing to true/);
        expect(messages(res, 'warn').join('\n')).not.to.match(/running the companion's hooks from the plugin/);
      } finally {
        api.put(config);
      }
    });

    // A workload of its own, so that its first backup is a full one and the tar stream is long.
    const freshPod = (deployment: string) =>
      addPod({ name: `${deployment}-5d4f8b7c9-abcde`, kind: 'metrics', deployment }, companionEnv.get(vmPod().metadata.name!)!);

    it('exec stream cut midway: a clear error, no complete marker, no snapshot left; the files it finished stay for the next backup, which copies them and then removes the folder', async () => {
      api.setExecFault({ cutAfterStdoutBytes: 3000, onlyCommand: 'tar' });
      let res: CallResult;
      try {
        res = await backupPod(freshPod('vmcut'), 'f-cut');
      } finally {
        api.setExecFault(undefined);
      }
      expect(res.ok, 'the backup should have failed').to.equal(false);
      expect(res.error).to.match(/NOT backed up in f-cut: .*ended without an exit status/);
      // Small files went up beside the cut stream before it ended: they stay, written down in the journal.
      expect(res.error).to.match(/; the [1-9]\d* file\(s\) this attempt finished stay in s3:\/\/.*\/f-cut\/ \(incomplete: never restored from\) for the next backup to copy server-side/);
      const kept = await keysUnder(folder('vmcut', 'f-cut'));
      expect(kept.filter((k) => k.endsWith('/victoria_complete.ignore') || k.endsWith('/backup_complete.ignore')), 'no complete marker').to.deep.equal([]);
      expect(kept.some((k) => k.includes('/victoria_journal_')), `a journal among ${kept.join(', ')}`).to.equal(true);
      expect((await new MetricsSource({ url: vm.url, authKey: 'snap-key' }).list()).length, 'no snapshot left').to.equal(0);

      // The next backup, while Velero is not yet done with f-cut: copies what f-cut finished and leaves its folder.
      const next = await backupPod(freshPod('vmcut'), 'f-cut-2');
      expect(next.ok, next.error).to.equal(true);
      const said = messages(next).join('\n');
      expect(said).to.match(/\(full\); what the failed backup f-cut finished is copied from its folder/);
      expect(said).to.match(/backup complete: .* copied server-side, of which [1-9]\d* files \(.*\) from the failed backup f-cut\)/);
      expect(said).to.match(/the folder of the failed backup f-cut stays until Velero is done with that backup \(no s3:\/\/.*\/cluster-a\/backups\/f-cut\/velero-backup\.json yet\)/);
      const manifest = (await manifestOf('vmcut', 'f-cut-2')) as Awaited<ReturnType<typeof manifestOf>> & { resumedFrom?: { backup: string; files: number; bytes: number } };
      expect(manifest.resumedFrom?.backup).to.equal('f-cut');
      expect(manifest.totals.bytesCopied).to.equal(manifest.resumedFrom!.bytes);
      expect(manifest.totals.bytesUploaded + manifest.totals.bytesCopied).to.equal(manifest.totals.bytes);
      expect(await keysUnder(folder('vmcut', 'f-cut'))).to.deep.equal(kept);

      // Velero has finished f-cut (its record is in the location): the next backup removes the folder.
      await moto.client.send(new PutObjectCommand({ Bucket: moto.bucket, Key: `${BSL_PREFIX}/backups/f-cut/velero-backup.json`, Body: '{}' }));
      const third = await backupPod(freshPod('vmcut'), 'f-cut-3');
      expect(third.ok, third.error).to.equal(true);
      expect(messages(third).join('\n')).to.match(new RegExp(`removed the folder of the failed backup f-cut \\(${kept.length} objects, .*\\), which held no complete backup`));
      expect(await keysUnder(folder('vmcut', 'f-cut'))).to.deep.equal([]);
      expect((await manifestOf('vmcut', 'f-cut-2')).totals.bytes, 'the backup that copied from it is whole').to.equal(manifest.totals.bytes);
    });

    it('a companion that stops sending fails after streamIdleTimeoutSeconds, not never', async () => {
      const config = api.get('v1', 'ConfigMap', 'velero', 'velero-plugin-victoria')!;
      api.put({ ...config, data: { ...(config.data as Record<string, string>), streamIdleTimeoutSeconds: '3' } });
      api.setExecFault({ hang: true, onlyCommand: 'tar' });
      try {
        const started = Date.now();
        await expectFailed(await backupPod(freshPod('vmhang'), 'f-hang'), 'f-hang', 'vmhang', /no (data|bytes|frame).*3 s|idle/i);
        expect(Date.now() - started).to.be.lessThan(30_000);
      } finally {
        api.setExecFault(undefined);
        api.put(config);
      }
    });

    it('an item that outlasts itemTimeoutSeconds fails with the timeout and what its clean-up did', async () => {
      const config = api.get('v1', 'ConfigMap', 'velero', 'velero-plugin-victoria')!;
      api.put({ ...config, data: { ...(config.data as Record<string, string>), itemTimeoutSeconds: '10', streamIdleTimeoutSeconds: '600', maxBytesPerSecond: '1MiB' } });
      api.setExecFault({ hang: true, onlyCommand: 'tar' });
      try {
        const started = Date.now();
        const res = await backupPod(freshPod('vmslow'), 'f-slow');
        await expectFailed(
          res,
          'f-slow',
          'vmslow',
          /took longer than itemTimeoutSeconds \(10 s\) and was stopped; uploads were capped at maxBytesPerSecond 1\.0 MiB\/s, so at most 10\.0 MiB could go up in that time: if the backup needed more, raise itemTimeoutSeconds or maxBytesPerSecond in the plugin ConfigMap/,
        );
        expect(res.error).to.match(/; the [1-9]\d* object\(s\) this attempt wrote to s3:\/\/.*\/f-slow\/ were removed$/);
        expect(Date.now() - started).to.be.lessThan(40_000);
      } finally {
        api.setExecFault(undefined);
        api.put(config);
      }
    });
  });
});
