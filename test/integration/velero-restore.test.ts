/**
 * Restores through Velero, end to end: a backup is made through the Go host (as
 * velero-backup.test.ts does: companion hooks, the pod backup action, moto), then the Go host calls
 * the restore action with the pod as Velero restores it (`item`), the pod as backed up
 * (`itemFromBackup`) and a Restore. What matters is checked: the init container lands after
 * `restore-wait` on the data volume with the plan URL and nothing secret; running the action again
 * on its own output changes nothing; a drill never points at the production hostPath and gets the
 * verification hook; other pods pass unchanged. Then the init container's command runs here (the
 * built executable, into an empty directory), VictoriaMetrics 1.145 starts on the result with the
 * counts of the backup, and `companion verify` agrees (exit 0) or, told other counts, does not (exit 1).
 * The same for VictoriaLogs: its partitions land under partitions/YYYYMMDD and the VictoriaLogs test
 * server answers the per-day counts of the backup.
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { request } from 'undici';
import { parsePluginConfig } from '../../src/actions/plugin-config.js';
import { RECORD_ANNOTATION } from '../../src/actions/record.js';
import { PLAN_FOLDER, removeExpiredPlans } from '../../src/actions/restore-plan.js';
import { databaseRetention, drillNetworkNote, drillPath, drillRetentionNote, DRILL_RETENTION_ARG, withDrillNetwork, withDrillRetention } from '../../src/actions/drill-spec.js';
import { lockedDown, restoreIdentity } from '../../src/actions/restore-spec.js';
import { RESTORED_MARKER as RESTORED_NOTE } from '../../src/engine/restored-marker.js';
import { S3Store } from '../../src/store/s3.js';
import { LogsSource, MetricsSource } from '../../src/victoria/index.js';
import { paths, requireComponents } from '../support/components.js';
import { KubeApiServer, putS3Location, type KubeObject } from '../support/kube-api.js';
import { startMoto, type Moto } from '../support/moto.js';
import { runCommand } from '../support/run-command.js';
import { callAction, type CallResult } from '../support/velero-host.js';
import { startVictoriaMetrics, type VmServer } from '../support/victoria-metrics.js';
import { startVictoriaLogs, type VlServer } from '../support/victorialogs.js';

const NS = 'monitoring';
const DRILL_NS = 'monitoring-drill';
const COMPANION = 'victoria-companion';
const BSL_PREFIX = 'cluster-a';
const POD = 'vmsingle-5d4f8b7c9-x2x9q';
const HOST_PATH = '/var/lib/victoria-metrics';
const PLUGIN_IMAGE = 'registry.example.com/velero-plugin-victoria:v0.1.0';
const EXE = '/plugins/velero-plugin-victoria';

interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: unknown[];
  envFrom?: unknown[];
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  ports?: Array<Record<string, unknown>>;
  securityContext?: Record<string, unknown>;
  resources?: Record<string, unknown>;
}
interface PodJson extends KubeObject {
  metadata: KubeObject['metadata'] & { annotations?: Record<string, string> };
  spec: { hostNetwork?: boolean; containers: Container[]; initContainers?: Container[]; volumes: Array<{ name: string; hostPath?: { path: string; type?: string }; [k: string]: unknown }> };
}

/** The database a pod runs: its name parts, container, image and production hostPath. */
const WORKLOADS = {
  metrics: { app: 'vmsingle', container: 'victoria-metrics', image: 'victoriametrics/victoria-metrics:v1.145.0', hostPath: HOST_PATH, port: 8428 },
  logs: { app: 'vlogs', container: 'victoria-logs', image: 'victoriametrics/victoria-logs:v1.50.0', hostPath: '/var/lib/victoria-logs', port: 9428 },
} as const;

/** The Victoria pod as it runs: the database on hostPath `data`, the companion mounting it read-only at /victoria-data. */
function podObject(name = POD, opts: { companionMount?: string; initContainers?: Container[]; kind?: 'metrics' | 'logs' } = {}): PodJson {
  const kind = opts.kind ?? 'metrics';
  const w = WORKLOADS[kind];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: NS,
      uid: `uid-${name}`,
      labels: { app: w.app, 'velero-plugin-victoria.io/kind': kind },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${w.app}-5d4f8b7c9`, uid: `rs-${w.app}`, controller: true }],
    },
    spec: {
      // On the node's network, as velero/examples runs them: Kubernetes sets hostPort = containerPort.
      hostNetwork: true,
      ...(opts.initContainers ? { initContainers: opts.initContainers } : {}),
      containers: [
        { name: w.container, image: w.image, ports: [{ name: 'http', containerPort: w.port, hostPort: w.port, protocol: 'TCP' }], volumeMounts: [{ name: 'data', mountPath: '/storage' }] },
        {
          name: COMPANION,
          image: PLUGIN_IMAGE,
          env: [{ name: 'VICTORIA_AUTH_KEY', valueFrom: { secretKeyRef: { name: `${w.app}-backup-auth`, key: 'authKey', optional: true } } }],
          volumeMounts: [
            { name: 'data', mountPath: opts.companionMount ?? '/victoria-data', readOnly: true },
            { name: 'velero-plugin-victoria-state', mountPath: '/var/run/velero-plugin-victoria' },
          ],
        },
      ],
      volumes: [
        { name: 'data', hostPath: { path: w.hostPath, type: 'DirectoryOrCreate' } },
        { name: 'velero-plugin-victoria-state', emptyDir: { sizeLimit: '16Mi' } },
      ],
    },
    status: { phase: 'Running' },
  };
}

/** What Velero hands a RestoreItemAction as `item`: metadata reset, no status. */
function asRestored(pod: KubeObject): PodJson {
  const copy = structuredClone(pod) as PodJson;
  for (const k of ['uid', 'resourceVersion', 'creationTimestamp', 'ownerReferences', 'generateName']) delete copy.metadata[k];
  delete copy.status;
  return copy;
}

function restoreObject(name: string, namespaceMapping?: Record<string, string>, backupName = 'b1'): KubeObject {
  return {
    apiVersion: 'velero.io/v1',
    kind: 'Restore',
    metadata: { name, namespace: 'velero', uid: `uid-${name}` },
    spec: { backupName, includedNamespaces: [NS], ...(namespaceMapping ? { namespaceMapping } : {}) },
    status: { phase: 'InProgress' },
  };
}

const initNames = (pod: PodJson) => (pod.spec.initContainers ?? []).map((c) => c.name);
const restoreContainerOf = (pod: PodJson) => (pod.spec.initContainers ?? []).find((c) => c.name === 'victoria-restore')!;
const argAfter = (command: string[], flag: string) => command[command.indexOf(flag) + 1]!;

const run = (file: string, args: string[], env: NodeJS.ProcessEnv = {}) => runCommand(file, args, { PATH: process.env.PATH ?? '', ...env });

describe('Velero restores end to end: Go host → restore action → plan in moto → init container → VictoriaMetrics → companion verify', function () {
  let moto: Moto;
  let api: KubeApiServer;
  let vm: VmServer;
  let env: NodeJS.ProcessEnv;
  let backedUp: PodJson;
  let manifestCounts: Record<string, number>;
  let firstOutput: PodJson;
  let drillOutput: PodJson;
  const companionEnv = () => ({ VICTORIA_KIND: 'metrics', VICTORIA_URL: vm.url, VICTORIA_DATA_DIR: vm.dataDir, VICTORIA_AUTH_KEY: 'snap-key', COMPANION_STATE_DIR: stateDir });
  let stateDir: string;

  const restorePod = (item: unknown, restore: KubeObject, itemFromBackup: unknown = backedUp) =>
    callAction(paths.plugin, { call: 'restore', pluginName: 'velero-plugin-victoria.io/pod-restore', item, itemFromBackup, restore, env });
  /** The pod backup action on `pod` for Velero backup `backup`, as Velero calls it. */
  const backupPod = (pod: string, backup: string) =>
    callAction(paths.plugin, {
      call: 'backup',
      pluginName: 'velero-plugin-victoria.io/pod-backup',
      item: api.get('v1', 'Pod', NS, pod),
      backup: { apiVersion: 'velero.io/v1', kind: 'Backup', metadata: { name: backup, namespace: 'velero', uid: `uid-${backup}` }, spec: { storageLocation: 'default' }, status: { phase: 'InProgress', startTimestamp: new Date().toISOString() } },
      env,
    });
  /** A running Victoria pod of a Deployment (through its ReplicaSet), whose companion execs run the built executable with `companionEnv`. */
  const addWorkload = (pod: string, kind: 'metrics' | 'logs', companionEnv: () => Record<string, string>) => {
    const app = WORKLOADS[kind].app;
    api.put(podObject(pod, { kind }));
    api.put({ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: `${app}-5d4f8b7c9`, namespace: NS, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: app, controller: true }] } });
    api.put({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: app, namespace: NS }, spec: { replicas: 1, selector: { matchLabels: { app } } } });
    api.onExec(NS, pod, COMPANION, (command) => (command[0] === EXE ? { file: paths.plugin, args: command.slice(1), env: { PATH: process.env.PATH ?? '', ...companionEnv() } } : undefined));
  };
  /** `kubectl delete deployment`: the workload's Deployment, ReplicaSet and pod go (the runbook's first step before a restore into its namespace). */
  const removeWorkload = (pod: string, kind: 'metrics' | 'logs') => {
    const app = WORKLOADS[kind].app;
    api.remove('v1', 'Pod', NS, pod);
    api.remove('apps/v1', 'ReplicaSet', NS, `${app}-5d4f8b7c9`);
    api.remove('apps/v1', 'Deployment', NS, app);
  };
  const messages = (r: CallResult, level?: string) => r.logs.filter((l) => !level || l['@level'] === level).map((l) => String(l['@message']));
  const getObject = async (key: string) => {
    const res = await moto.client.send(new GetObjectCommand({ Bucket: moto.bucket, Key: key }));
    return Buffer.from(await res.Body!.transformToByteArray());
  };
  /** Nothing secret in what goes into the application's namespace or the log. */
  const expectNoSecrets = (res: CallResult) => {
    const text = JSON.stringify(res.item);
    expect(text).not.to.contain(moto.secretAccessKey);
    const init = restoreContainerOf(res.item as PodJson);
    expect(init.env, 'no env').to.equal(undefined);
    expect(init.envFrom, 'no envFrom').to.equal(undefined);
    expect(JSON.stringify(init)).not.to.match(/secretKeyRef|secretRef|"secret"/);
    expect((res.item as PodJson).spec.volumes.filter((v) => 'secret' in v), 'no Secret volume').to.deep.equal([]);
    const log = JSON.stringify(res.logs) + res.error;
    expect(log).not.to.contain(argAfter(init.command!, '--plan-url'));
    expect(log).not.to.match(/X-Amz-Signature=[0-9a-f]/);
    expect(log).not.to.contain(moto.secretAccessKey);
  };

  before(async function () {
    requireComponents(this, paths.plugin, paths.veleroHost, paths.vm145, paths.motoServer);
    // No-auth mode: moto answers presigned URLs only there, and a check
    // in front of it refuses any presigned URL whose signature, scope or expiry S3 would refuse
    // (moto_presign_check.py). The restore action's header-signed calls are the backup action's,
    // whose signatures velero-backup.test.ts checks.
    moto = await startMoto({ auth: false });
    api = await new KubeApiServer().listen();
    vm = await startVictoriaMetrics(this, { version: '1.145', snapshotAuthKey: 'snap-key' });
    await vm.importSeries(30, 200);
    stateDir = mkdtempSync(join(tmpdir(), 'companion-state-'));
    putS3Location(api, { ...moto, prefix: BSL_PREFIX });
    // One ConfigMap for both actions; this one carries only the restore action's label.
    api.put({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'velero-plugin-victoria', namespace: 'velero', labels: { 'velero.io/plugin-config': '', 'velero-plugin-victoria.io/pod-restore': 'RestoreItemAction' } },
      data: { execTimeoutSeconds: '60', restorePlanExpirySeconds: '3600' },
    });
    // Velero's Deployment as `velero install --plugins …/velero-plugin-victoria:v0.1.0` makes it.
    api.put({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'velero', namespace: 'velero' },
      spec: {
        template: {
          spec: {
            initContainers: [
              { name: 'velero-velero-plugin-for-aws', image: 'velero/velero-plugin-for-aws:v1.13.0', volumeMounts: [{ name: 'plugins', mountPath: '/target' }] },
              { name: 'velero-plugin-victoria', image: PLUGIN_IMAGE, imagePullPolicy: 'IfNotPresent', volumeMounts: [{ name: 'plugins', mountPath: '/target' }] },
            ],
            containers: [{ name: 'velero', image: 'velero/velero:v1.18.1' }],
          },
        },
      },
    });
    api.put({ apiVersion: 'velero.io/v1', kind: 'Backup', metadata: { name: 'b1', namespace: 'velero' }, spec: { storageLocation: 'default' }, status: { phase: 'Completed' } });
    env = { KUBECONFIG: api.writeKubeconfig(), VELERO_NAMESPACE: 'velero', AWS_SHARED_CREDENTIALS_FILE: '', AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' };

    // The backup the restores restore: hooks in the companion, then the pod backup action.
    addWorkload(POD, 'metrics', companionEnv);
    const pre = await run(paths.plugin, ['companion', 'hook', 'pre'], companionEnv());
    expect(pre.status, pre.stderr).to.equal(0);
    const backup = await backupPod(POD, 'b1');
    const post = await run(paths.plugin, ['companion', 'hook', 'post'], companionEnv());
    expect(post.status, post.stderr).to.equal(0);
    expect(backup.ok, backup.error).to.equal(true);
    backedUp = backup.item as PodJson;
    expect(backedUp.metadata.annotations?.[RECORD_ANNOTATION]).to.be.a('string');
    const manifest = JSON.parse((await getObject(`${BSL_PREFIX}/plugins/victoria/${NS}/vmsingle/b1/victoria_manifest.ignore`)).toString('utf8')) as { counts: Record<string, number> };
    manifestCounts = manifest.counts;
    expect(manifestCounts).to.deep.equal({ series: 30, samples: 6000 });
    // The restores below restore into the workload's own namespace: it is deleted first, as the runbook says.
    removeWorkload(POD, 'metrics');
  });
  after(async () => {
    await vm?.stop();
    await api?.close();
    await moto?.stop();
  });

  it('adds victoria-restore after restore-wait, on the data volume, with the plan URL and nothing secret', async () => {
    const restoreWait: Container = { name: 'restore-wait', image: 'velero/velero:v1.18.1', command: ['/velero-restore-helper'] };
    const item = asRestored(backedUp);
    item.spec.initContainers = [restoreWait];
    const res = await restorePod(item, restoreObject('r1'));
    expect(res.ok, res.error).to.equal(true);
    expect(res.itemProblem).to.equal('');
    expect(res.additionalItems, 'not a drill: the Restore decides what else comes back').to.deep.equal([]);
    expect(messages(res, 'warn'), 'the workload was deleted first: nothing in the way').to.deep.equal([]);
    expect(res.logViolations ?? []).to.deep.equal([]);
    const out = res.item as PodJson;
    expect(initNames(out)).to.deep.equal(['restore-wait', 'victoria-restore']);
    const init = restoreContainerOf(out);
    expect(init.image).to.equal(PLUGIN_IMAGE);
    const cmd = init.command!;
    expect(cmd.slice(0, 3)).to.deep.equal([EXE, 'restore', '--plan-url']);
    expect(cmd.slice(4)).to.deep.equal(['--plan-sha256', argAfter(cmd, '--plan-sha256'), '--data-dir', '/victoria-data']);
    expect(argAfter(cmd, '--plan-url')).to.match(/^http:\/\/127\.0\.0\.1:\d+\/.*_restore-plans\/uid-r1\/monitoring\.vmsingle-5d4f8b7c9-x2x9q\.json\?.*X-Amz-Signature=/);
    expect(init.volumeMounts).to.deep.equal([{ name: 'data', mountPath: '/victoria-data' }]);
    expect(init.resources).to.deep.equal({ requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '1Gi' } });
    // VictoriaMetrics' container names no user: it runs as its image's root, and so must the restore.
    expect(init.securityContext).to.include({ runAsUser: 0, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
    expect(out.spec.volumes.find((v) => v.name === 'data')?.hostPath).to.deep.equal({ path: HOST_PATH, type: 'DirectoryOrCreate' });
    expect(Object.keys(out.metadata.annotations ?? {}).filter((k) => k.includes('hook.restore')), 'no hook outside drills').to.deep.equal([]);
    expect(out.spec.containers).to.deep.equal(item.spec.containers);
    expectNoSecrets(res);

    // The plan is in the bucket under plugins/, and its SHA-256 is the one the init container checks.
    const plan = await getObject(`${BSL_PREFIX}/plugins/victoria/_restore-plans/uid-r1/${NS}.${POD}.json`);
    expect(createHash('sha256').update(plan).digest('hex')).to.equal(argAfter(cmd, '--plan-sha256'));
    const parsed = JSON.parse(plan.toString('utf8')) as { restore: string; kind: string; counts: Record<string, number>; objects: Record<string, { url: string }> };
    expect(parsed).to.include({ restore: 'r1', kind: 'metrics' });
    expect(parsed.counts).to.deep.equal(manifestCounts);
    expect(parsed.objects).to.have.property('victoria_manifest.ignore');
    const fetched = await request(argAfter(cmd, '--plan-url'));
    expect(fetched.statusCode).to.equal(200);
    expect(Buffer.from(await fetched.body.arrayBuffer()).equals(plan)).to.equal(true);

    const info = messages(res, 'info').join('\n');
    expect(info).to.match(/restoring metrics backup b1 of Deployment\/vmsingle \(\d+ files, .*\) from s3:\/\/[^ ]+\/cluster-a\/plugins\/victoria\/monitoring\/vmsingle\/b1\/ into volume "data" \(hostPath \/var\/lib\/victoria-metrics\)/);
    // Velero follows the download as the action's operation: the pod and the plan it restores.
    expect(res.operationID).to.equal(`${NS}/${POD}/${argAfter(cmd, '--plan-sha256')}`);
    firstOutput = out;
  });

  it('is idempotent: run again on its own output, there is still one victoria-restore, after restore-wait', async () => {
    const res = await restorePod(firstOutput, restoreObject('r1'));
    expect(res.ok, res.error).to.equal(true);
    const out = res.item as PodJson;
    expect(initNames(out)).to.deep.equal(['restore-wait', 'victoria-restore']);
    expect(out.spec.volumes).to.deep.equal(firstOutput.spec.volumes);
    const { command: _a, ...rest } = restoreContainerOf(out);
    const { command: _b, ...before } = restoreContainerOf(firstOutput);
    expect(rest).to.deep.equal(before);
    expectNoSecrets(res);
  });

  it('without restore-wait, victoria-restore is the first init container', async () => {
    const item = asRestored(backedUp);
    item.spec.initContainers = [{ name: 'user-init', image: 'busybox' }];
    const res = await restorePod(item, restoreObject('r2'));
    expect(res.ok, res.error).to.equal(true);
    expect(initNames(res.item as PodJson)).to.deep.equal(['victoria-restore', 'user-init']);
  });

  it('restoreReplace, restoreDirectIo and restoreMaxBytesPerSecond from the plugin ConfigMap reach the init container as flags', async () => {
    const config = api.get('v1', 'ConfigMap', 'velero', 'velero-plugin-victoria')!;
    api.put({ ...config, data: { ...(config.data as Record<string, string>), restoreReplace: 'true', restoreDirectIo: 'false', restoreMaxBytesPerSecond: '8MiB' } });
    let res: CallResult;
    try {
      res = await restorePod(asRestored(backedUp), restoreObject('r-settings'));
    } finally {
      api.put(config);
    }
    expect(res.ok, res.error).to.equal(true);
    const cmd = restoreContainerOf(res.item as PodJson).command!;
    expect(cmd.slice(-4)).to.deep.equal(['--replace', '--no-direct-io', '--max-bytes-per-second', String(8 * 2 ** 20)]);
    expect(messages(res, 'info').join('\n')).to.match(/existing data in it is moved aside \(restoreReplace\)/);
  });

  it('warns when the backup is older than the restored database keeps data (it would delete all of it as it starts)', async () => {
    const item = asRestored(backedUp);
    item.spec.containers[0]!.args = ['-storageDataPath=/storage', '-retentionPeriod=1s'];
    await new Promise((r) => setTimeout(r, 1100));
    const res = await restorePod(item, restoreObject('r-old'));
    expect(res.ok, res.error).to.equal(true);
    expect(messages(res, 'warn').join('\n')).to.match(
      /backup b1 was made [\d.]+ days ago, longer than the restored VictoriaMetrics keeps data \(-retentionPeriod=1s\): it deletes the restored data as it starts; give the restored pod a longer -retentionPeriod/,
    );
    // Velero applies the Restore's resource modifiers after the actions: the warning points at them.
    const modified = restoreObject('r-modified');
    (modified.spec as Record<string, unknown>).resourceModifier = { kind: 'ConfigMap', name: 'retention-patch' };
    const withModifier = await restorePod(item, modified);
    expect(messages(withModifier, 'warn').join('\n')).to.match(/unless the resource modifiers of r-modified \(ConfigMap retention-patch\), which Velero applies after this action, give it a longer -retentionPeriod/);
    expect(((res.item as PodJson).spec.containers[0]!.args as string[]).at(-1), 'a real restore keeps the user\'s settings').to.equal('-retentionPeriod=1s');
    // With its default retention (a month) the same backup is fine.
    const plain = await restorePod(asRestored(backedUp), restoreObject('r-default'));
    expect(messages(plain, 'warn').join('\n')).not.to.match(/retentionPeriod/);
  });

  it('warns when the restored pod runs a VictoriaMetrics too old for the data (before v1.90: it cannot open the new format)', async () => {
    // Debian's VictoriaMetrics reports no version: the data's format (parts.json) says v1.90 or later.
    const item = asRestored(backedUp);
    item.spec.containers[0]!.image = 'registry.example.com:5000/victoriametrics/victoria-metrics:v1.79.5';
    const res = await restorePod(item, restoreObject('r-older'));
    expect(res.ok, res.error).to.equal(true);
    expect(messages(res, 'warn').join('\n')).to.include(
      'backup b1: its data is in the storage format of VictoriaMetrics v1.90 and later (parts.json), and the restored pod runs registry.example.com:5000/victoriametrics/victoria-metrics:v1.79.5, which is older: ' +
        'VictoriaMetrics before v1.90 cannot open data written by v1.90 or later (the storage format changed), so it will not start on the restored data; run v1.90.0 or later in the restored pod',
    );
    // The image of the backup (v1.145.0), one without a version tag, or a digest: nothing to say.
    for (const image of [undefined, 'victoriametrics/victoria-metrics:latest', 'victoriametrics/victoria-metrics@sha256:0123456789abcdef']) {
      const same = asRestored(backedUp);
      if (image) same.spec.containers[0]!.image = image;
      expect(messages(await restorePod(same, restoreObject('r-same')), 'warn').join('\n'), image).not.to.include('which is older');
    }
  });

  it('a drill (namespace mapping) restores into another hostPath, never the production one, and adds the verify hook', async () => {
    const res = await restorePod(asRestored(backedUp), restoreObject('drill-1', { [NS]: DRILL_NS }));
    expect(res.ok, res.error).to.equal(true);
    const out = res.item as PodJson;
    const data = out.spec.volumes.find((v) => v.name === 'data')!;
    expect(data.hostPath).to.deep.equal({ path: `${HOST_PATH}-drill-drill-1`, type: 'DirectoryOrCreate' });
    expect(JSON.stringify(out.spec.volumes)).not.to.contain(`"${HOST_PATH}"`);
    const db = out.spec.containers.find((c) => c.name !== COMPANION)!;
    expect((db.args as string[]).at(-1), 'the drill database keeps every sample').to.equal(DRILL_RETENTION_ARG);
    expect(messages(res, 'info')).to.include(
      `drill: ${DRILL_NS}/${POD} data restored into hostPath ${HOST_PATH}-drill-drill-1 (production path ${HOST_PATH} untouched); ` +
        `container(s) ${db.name} run with ${DRILL_RETENTION_ARG}, so the restored copy keeps every sample of the backup; ` +
        'it runs on the pod network (hostNetwork and hostPort removed), so that it can run beside production on the same node',
    );
    // Production's ports on the node stay production's: the drill pod can be scheduled beside it.
    expect(out.spec).not.to.have.property('hostNetwork');
    expect(db.ports).to.deep.equal([{ name: 'http', containerPort: 8428, protocol: 'TCP' }]);
    const a = out.metadata.annotations ?? {};
    expect(a['post.hook.restore.velero.io/container']).to.equal(COMPANION);
    expect(a['post.hook.restore.velero.io/on-error']).to.equal('Fail');
    // The count may take as long as at backup time (countTimeoutSeconds, 1800 s by default), after the wait for /health.
    expect(a['post.hook.restore.velero.io/exec-timeout']).to.equal(`${600 + 1800 + 60}s`);
    expect(a['post.hook.restore.velero.io/wait-timeout']).to.match(/^\d+s$/);
    const hook = JSON.parse(a['post.hook.restore.velero.io/command']!) as string[];
    expect(hook.slice(0, 4)).to.deep.equal([EXE, 'companion', 'verify', '--expect']);
    expect(hook.slice(-4)).to.deep.equal(['--timeout', '600s', '--count-timeout', '1800s']);
    expect(JSON.parse(hook[4]!)).to.deep.equal(manifestCounts);
    expect(initNames(out)).to.deep.equal(['victoria-restore']);
    expectNoSecrets(res);
    // The drill restores only labelled objects: the Secret the companion's env names comes along (Velero maps its namespace).
    expect(res.additionalItems).to.deep.equal([{ group: '', resource: 'secrets', namespace: NS, name: 'vmsingle-backup-auth' }]);

    // Again on its own output: the same drill path, not a drill of the drill.
    const again = await restorePod(out, restoreObject('drill-1', { [NS]: DRILL_NS }));
    expect(again.ok, again.error).to.equal(true);
    expect((again.item as PodJson).spec.volumes.find((v) => v.name === 'data')!.hostPath!.path).to.equal(`${HOST_PATH}-drill-drill-1`);
    expect(messages(again, 'warn'), 'our own hook is replaced silently').to.deep.equal([]);
    // The second run rewrote the plan (same key, new expiry): its output is the one that matches it.
    drillOutput = again.item as PodJson;
  });

  it('a drill whose data volume is not a hostPath (an NFS share, maybe production\'s) never moves its contents aside, restoreReplace or not', async () => {
    const config = api.get('v1', 'ConfigMap', 'velero', 'velero-plugin-victoria')!;
    api.put({ ...config, data: { ...(config.data as Record<string, string>), restoreReplace: 'true' } });
    try {
      const nfs = structuredClone(backedUp);
      const at = nfs.spec.volumes.findIndex((v) => v.name === 'data');
      nfs.spec.volumes[at] = { name: 'data', nfs: { server: 'nfs.example', path: '/exports/vm' } } as (typeof nfs.spec.volumes)[number];
      const res = await restorePod(asRestored(nfs), restoreObject('drill-nfs', { [NS]: DRILL_NS }), nfs);
      expect(res.ok, res.error).to.equal(true);
      expect(restoreContainerOf(res.item as PodJson).command).not.to.include('--replace');
      expect(messages(res, 'info').join('\n')).to.contain('not a hostPath, so it is not remapped; it must not be the production volume, and restoreReplace does not apply to it (a non-empty directory there is refused)');
      // A hostPath drill, remapped away from production, keeps restoreReplace.
      const remapped = await restorePod(asRestored(backedUp), restoreObject('drill-replace', { [NS]: DRILL_NS }));
      expect(remapped.ok, remapped.error).to.equal(true);
      expect(restoreContainerOf(remapped.item as PodJson).command).to.include('--replace');
    } finally {
      api.put(config);
    }
  });

  it('a drill of a backup without counts (the count failed) restores with checksums and says it adds no verify hook', async () => {
    const config = api.get('v1', 'ConfigMap', 'velero', 'velero-plugin-victoria')!;
    api.put({ ...config, metadata: { ...config.metadata, labels: { ...(config.metadata.labels as Record<string, string>), 'velero-plugin-victoria.io/pod-backup': 'BackupItemAction' } }, data: { ...(config.data as Record<string, string>), countTimeoutSeconds: '1' } });
    api.put({ apiVersion: 'velero.io/v1', kind: 'Backup', metadata: { name: 'b-nocount', namespace: 'velero' }, spec: { storageLocation: 'default' }, status: { phase: 'Completed' } });
    api.setExecFault({ hang: true, onlyCommand: 'counts' });
    addWorkload(POD, 'metrics', companionEnv);
    let item: PodJson;
    try {
      const backup = await backupPod(POD, 'b-nocount');
      expect(backup.ok, backup.error).to.equal(true);
      item = backup.item as PodJson;
    } finally {
      api.setExecFault(undefined);
      api.put(config);
      removeWorkload(POD, 'metrics');
    }
    const res = await restorePod(asRestored(item), restoreObject('drill-nocount', { [NS]: DRILL_NS }, 'b-nocount'), item);
    expect(res.ok, res.error).to.equal(true);
    const out = res.item as PodJson;
    expect(out.spec.volumes.find((v) => v.name === 'data')!.hostPath!.path).to.equal(`${HOST_PATH}-drill-drill-nocount`);
    expect(initNames(out)).to.deep.equal(['victoria-restore']);
    expect(Object.keys(out.metadata.annotations ?? {}).filter((k) => k.startsWith('post.hook.restore'))).to.deep.equal([]);
    expect(messages(res, 'warn').join('\n')).to.match(/drill: backup b-nocount holds no counts \(.*\), so no `companion verify` hook is added/);
    expectNoSecrets(res);
  });

  it('a drill also remaps the Deployment/ReplicaSet/StatefulSet/DaemonSet templates, so a recreated drill pod never opens the production path; outside drills they are unchanged', async () => {
    const pod = podObject('vmsingle-5d4f8b7c9-tmpl');
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'vmsingle', namespace: NS, labels: { 'velero-plugin-victoria.io/kind': 'metrics' } },
      spec: { replicas: 1, selector: { matchLabels: { app: 'vmsingle' } }, template: { metadata: { labels: pod.metadata.labels }, spec: pod.spec } },
    };
    const call = (restore: KubeObject) =>
      callAction(paths.plugin, { call: 'restore', pluginName: 'velero-plugin-victoria.io/workload-restore', item: deployment, itemFromBackup: deployment, restore, env });
    const drill = await call(restoreObject('drill-2', { [NS]: DRILL_NS }));
    expect(drill.ok, drill.error).to.equal(true);
    const volumes = (drill.item as { spec: { template: { spec: PodJson['spec'] } } }).spec.template.spec.volumes;
    expect(volumes.find((v) => v.name === 'data')!.hostPath).to.deep.equal({ path: `${HOST_PATH}-drill-drill-2`, type: 'DirectoryOrCreate' });
    const containers = (drill.item as { spec: { template: { spec: PodJson['spec'] } } }).spec.template.spec.containers;
    expect((containers.find((c) => c.name !== COMPANION)!.args as string[]).at(-1)).to.equal(DRILL_RETENTION_ARG);
    expect((drill.item as { spec: { template: { spec: PodJson['spec'] } } }).spec.template.spec).not.to.have.property('hostNetwork');
    expect(containers.find((c) => c.name !== COMPANION)!.ports).to.deep.equal([{ name: 'http', containerPort: 8428, protocol: 'TCP' }]);
    expect(messages(drill, 'info').join('\n')).to.contain(`uses hostPath ${HOST_PATH}-drill-drill-2, not the production path ${HOST_PATH}`);
    expect(messages(drill, 'info').join('\n')).to.contain('it runs on the pod network (hostNetwork and hostPort removed)');
    expect(drill.item).not.to.have.nested.property('spec.updateStrategy');
    // Again on its own output: the production path comes from the backed-up template, so no drill of the drill.
    const again = await callAction(paths.plugin, { call: 'restore', pluginName: 'velero-plugin-victoria.io/workload-restore', item: drill.item, itemFromBackup: deployment, restore: restoreObject('drill-2', { [NS]: DRILL_NS }), env });
    expect(again.ok, again.error).to.equal(true);
    expect(again.item).to.deep.equal(drill.item);
    const plain = await call(restoreObject('r4'));
    expect(plain.ok, plain.error).to.equal(true);
    expect(plain.item).to.deep.equal(deployment);
    // A StatefulSet in a drill: also OnDelete, or its controller would replace the restored pod (a new revision).
    const statefulSet = { ...deployment, kind: 'StatefulSet', spec: { ...deployment.spec, serviceName: 'vmsingle', updateStrategy: { type: 'RollingUpdate' } } };
    const sts = await callAction(paths.plugin, { call: 'restore', pluginName: 'velero-plugin-victoria.io/workload-restore', item: statefulSet, itemFromBackup: statefulSet, restore: restoreObject('drill-3', { [NS]: DRILL_NS }), env });
    expect(sts.ok, sts.error).to.equal(true);
    expect((sts.item as { spec: { updateStrategy: unknown } }).spec.updateStrategy).to.deep.equal({ type: 'OnDelete' });
    expect((sts.item as { spec: { template: { spec: PodJson['spec'] } } }).spec.template.spec.volumes.find((v) => v.name === 'data')!.hostPath!.path).to.equal(`${HOST_PATH}-drill-drill-3`);
    expect(messages(sts, 'info').join('\n')).to.contain('drill: StatefulSet monitoring/vmsingle gets updateStrategy OnDelete');
    // A labelled DaemonSet in a drill: its pods on every node would otherwise open the production path.
    const daemonSet = { ...deployment, kind: 'DaemonSet', spec: { selector: deployment.spec.selector, template: deployment.spec.template, updateStrategy: { type: 'RollingUpdate' } } };
    const ds = await callAction(paths.plugin, { call: 'restore', pluginName: 'velero-plugin-victoria.io/workload-restore', item: daemonSet, itemFromBackup: daemonSet, restore: restoreObject('drill-4', { [NS]: DRILL_NS }), env });
    expect(ds.ok, ds.error).to.equal(true);
    expect((ds.item as { spec: { updateStrategy: unknown } }).spec.updateStrategy).to.deep.equal({ type: 'OnDelete' });
    expect((ds.item as { spec: { template: { spec: PodJson['spec'] } } }).spec.template.spec.volumes.find((v) => v.name === 'data')!.hostPath!.path).to.equal(`${HOST_PATH}-drill-drill-4`);
    // A mistyped kind (the backup's workload check reported it): the drill restores every labelled
    // object, and this one, unchanged, would open the production path; it is refused instead.
    const typo = { ...deployment, metadata: { ...deployment.metadata, labels: { 'velero-plugin-victoria.io/kind': 'vm' } } };
    const refused = await callAction(paths.plugin, { call: 'restore', pluginName: 'velero-plugin-victoria.io/workload-restore', item: typo, itemFromBackup: typo, restore: restoreObject('drill-5', { [NS]: DRILL_NS }), env });
    expect(refused.ok).to.equal(false);
    expect(refused.error).to.contain(
      `Deployment monitoring/vmsingle: its label velero-plugin-victoria.io/kind is "vm", neither metrics nor logs, so it is no Victoria workload the drill can move to a drill path, ` +
        `and restored as it is its pods would open the production hostPath: not restored into ${DRILL_NS}`,
    );
    const typoPlain = await callAction(paths.plugin, { call: 'restore', pluginName: 'velero-plugin-victoria.io/workload-restore', item: typo, itemFromBackup: typo, restore: restoreObject('r5'), env });
    expect(typoPlain.ok, typoPlain.error).to.equal(true);
    expect(typoPlain.item).to.deep.equal(typo);
  });

  it('the pod exists already: no plan and no init container (Velero keeps the running pod), with a warning; its ReplicaSet alone, or its Deployment alone: a warning', async () => {
    const planKey = (uid: string) => `${BSL_PREFIX}/plugins/victoria/_restore-plans/${uid}/${NS}.${POD}.json`;
    api.put(podObject(POD));
    try {
      const res = await restorePod(asRestored(backedUp), restoreObject('r-exists'));
      expect(res.ok, res.error).to.equal(true);
      expect(initNames(res.item as PodJson)).to.deep.equal([]);
      expect(res.item).to.deep.equal(asRestored(backedUp));
      expect(messages(res, 'warn').join('\n')).to.match(
        /pod monitoring\/vmsingle-5d4f8b7c9-x2x9q exists already: Velero does not replace existing objects, so it keeps running on its current data and nothing is restored into it; to restore its data, delete the workload first \(docs\/velero-restore\.md, "Single-workload restore"\)/,
      );
      expect(await getObject(planKey('uid-r-exists')).then(() => 'written', () => 'none')).to.equal('none');
    } finally {
      api.remove('v1', 'Pod', NS, POD);
    }
    api.put({ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'vmsingle-5d4f8b7c9', namespace: NS } });
    try {
      const res = await restorePod(asRestored(backedUp), restoreObject('r-rs'));
      expect(res.ok, res.error).to.equal(true);
      expect(initNames(res.item as PodJson)).to.deep.equal(['victoria-restore']);
      expect(messages(res, 'warn').join('\n')).to.match(/ReplicaSet monitoring\/vmsingle-5d4f8b7c9 exists already: it adopts the restored pod as a replica too many and may delete it before its data is restored/);
    } finally {
      api.remove('apps/v1', 'ReplicaSet', NS, 'vmsingle-5d4f8b7c9');
    }
    // Rolled over since the backup: the Deployment is there, the backup's ReplicaSet is not. The
    // pod's pod-template-hash label ties its ReplicaSet to the Deployment.
    api.put({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'vmsingle', namespace: NS } });
    try {
      const hashed = structuredClone(backedUp);
      hashed.metadata.labels = { ...hashed.metadata.labels, 'pod-template-hash': '5d4f8b7c9' };
      const res = await restorePod(asRestored(hashed), restoreObject('r-deploy'), hashed);
      expect(res.ok, res.error).to.equal(true);
      expect(initNames(res.item as PodJson)).to.deep.equal(['victoria-restore']);
      expect(messages(res, 'warn').join('\n')).to.match(
        /Deployment monitoring\/vmsingle exists already: the restored pod runs beside the Deployment's own pod \(its ReplicaSet vmsingle-5d4f8b7c9 of the backup is gone, and the current one does not adopt it\).*; delete the workload first/,
      );
      // Without the label the ReplicaSet is one of its own, not a Deployment's: no guess at a Deployment.
      const own = await restorePod(asRestored(backedUp), restoreObject('r-own-rs'));
      expect(own.ok, own.error).to.equal(true);
      expect(messages(own, 'warn').join('\n')).not.to.include('Deployment monitoring/vmsingle');
      // With restoreReplace the Deployment's own pod could be a database on the same hostPath, which
      // the init container cannot see from its container: no restore then, an error instead.
      const config = api.get('v1', 'ConfigMap', 'velero', 'velero-plugin-victoria')!;
      api.put({ ...config, data: { ...(config.data as Record<string, string>), restoreReplace: 'true' } });
      try {
        const refused = await restorePod(asRestored(hashed), restoreObject('r-deploy-replace'), hashed);
        expect(refused.ok).to.equal(false);
        expect(refused.error).to.contain(
          'Deployment monitoring/vmsingle exists already, and restoreReplace is "true": a pod of it may run a database on the same hostPath, ' +
            'whose files the restore would move aside (the init container cannot see a database in another container); delete the workload first',
        );
        expect(await getObject(planKey('uid-r-deploy-replace')).then(() => 'written', () => 'none')).to.equal('none');
      } finally {
        api.put(config);
      }
    } finally {
      api.remove('apps/v1', 'Deployment', NS, 'vmsingle');
    }
  });

  it("a record of another backup than the Restore's, and a Backup the API server will not show: warnings, and the recorded data is restored", async () => {
    // The pod kept the record of b1 from an earlier restore and was backed up as b2 without our action.
    const res = await restorePod(asRestored(backedUp), restoreObject('r-other', undefined, 'b2'));
    expect(res.ok, res.error).to.equal(true);
    expect(argAfter(restoreContainerOf(res.item as PodJson).command!, '--plan-url')).to.be.a('string');
    expect(messages(res, 'warn').join('\n')).to.contain(
      `pod ${NS}/${POD}: its backup record names backup b1, not b2: the plugin did not capture its data in b2 (the record came along from an earlier restore), so the older data of b1 is restored`,
    );
    // A drill of b2 must not pass on b1's data: it fails the pod, which fails the drill.
    const drill = await restorePod(asRestored(backedUp), restoreObject('drill-other', { [NS]: DRILL_NS }, 'b2'));
    expect(drill.ok).to.equal(false);
    expect(drill.error).to.contain(
      `pod ${NS}/${POD}: its Victoria data cannot be restored by drill-other from backup b1: the drill is of backup b2, which does not hold this pod's data: ` +
        'the plugin did not capture it in b2 (its backup record, naming b1, came along from an earlier restore); a drill checks the backup it restores, ' +
        'so the older data of b1 is not restored in its place: drill a backup whose log shows this pod backed up',
    );
    const allow = api.forbid('get', 'backups', 'velero');
    try {
      const refused = await restorePod(asRestored(backedUp), restoreObject('r-no-backup'));
      expect(refused.ok, refused.error).to.equal(true);
      expect(initNames(refused.item as PodJson)).to.deep.equal(['victoria-restore']);
      expect(messages(refused, 'warn').join('\n')).to.match(
        /could not read Backup velero\/b1 to find its storage location \(.*forbidden.*\); reading from the location named in the backup record, default/,
      );
    } finally {
      allow();
    }
  });

  it('a StatefulSet that exists already, and a check the API server refuses: warnings, and the restore goes on', async () => {
    // The pod restored while its controller (`vmsingle`, of `kind`) exists: restored all the same; its warnings.
    const warningsBeside = async (kind: 'StatefulSet' | 'DaemonSet', podName: string): Promise<string> => {
      const pod = { ...backedUp, metadata: { ...backedUp.metadata, name: podName, ownerReferences: [{ apiVersion: 'apps/v1', kind, name: 'vmsingle', uid: kind, controller: true }] } };
      api.put({ apiVersion: 'apps/v1', kind, metadata: { name: 'vmsingle', namespace: NS } });
      try {
        const res = await restorePod(asRestored(pod), restoreObject(`r-${kind.toLowerCase()}`), pod);
        expect(res.ok, res.error).to.equal(true);
        expect(initNames(res.item as PodJson)).to.deep.equal(['victoria-restore']);
        return messages(res, 'warn').join('\n');
      } finally {
        api.remove('apps/v1', kind, NS, 'vmsingle');
      }
    };
    expect(await warningsBeside('StatefulSet', 'vmsingle-0')).to.match(
      /pod monitoring\/vmsingle-0: StatefulSet monitoring\/vmsingle exists already: it adopts the restored pod: scaled below the pod's ordinal it deletes it before its data is restored, otherwise it may create the pod itself first, without the restore; delete the workload first/,
    );
    // A DaemonSet keeps one pod per node: the same warning, in its words.
    expect(await warningsBeside('DaemonSet', 'vmsingle-q9w4t')).to.contain(
      'pod monitoring/vmsingle-q9w4t: DaemonSet monitoring/vmsingle exists already: it adopts the restored pod: with a pod of its own on that node already it deletes one of the two, ' +
        'otherwise it may create its own pod there first, without the restore; delete the workload first',
    );
    const allowPods = api.forbid('get', 'pods', NS);
    const allowSets = api.forbid('get', 'replicasets', NS);
    try {
      const res = await restorePod(asRestored(backedUp), restoreObject('r-forbidden'));
      expect(res.ok, res.error).to.equal(true);
      expect(initNames(res.item as PodJson)).to.deep.equal(['victoria-restore']);
      const warned = messages(res, 'warn').join('\n');
      expect(warned).to.match(/could not check whether pod monitoring\/vmsingle-5d4f8b7c9-x2x9q exists already \(cannot read pods "vmsingle-5d4f8b7c9-x2x9q" in namespace monitoring: .*forbidden.*\); if it does, Velero keeps it running on its current data/);
      expect(warned).to.match(/could not check whether ReplicaSet monitoring\/vmsingle-5d4f8b7c9 exists already \(.*forbidden.*\); if it does, it adopts the restored pod/);
      // With restoreReplace an unanswered lookup is not taken for an absent workload: moving the
      // data aside needs to know that no pod of it runs a database there.
      const config = api.get('v1', 'ConfigMap', 'velero', 'velero-plugin-victoria')!;
      api.put({ ...config, data: { ...(config.data as Record<string, string>), restoreReplace: 'true' } });
      try {
        const refused = await restorePod(asRestored(backedUp), restoreObject('r-forbidden-replace'));
        expect(refused.ok).to.equal(false);
        expect(refused.error).to.match(
          /could not check whether ReplicaSet monitoring\/vmsingle-5d4f8b7c9 \(.*forbidden.*\) exists, and restoreReplace is "true": if it does, a pod of it may run a database on the same hostPath, whose files the restore would move aside .*; restore again once the API server answers \(for a 403, grant Velero's service account get on that resource: velero\/rbac\), after you delete the workload first/,
        );
        expect(await getObject(`${BSL_PREFIX}/plugins/victoria/_restore-plans/uid-r-forbidden-replace/${NS}.${POD}.json`).then(() => 'written', () => 'none')).to.equal('none');
      } finally {
        api.put(config);
      }
    } finally {
      allowPods();
      allowSets();
    }
  });

  it('temporary credentials (the default chain: IRSA, instance roles): the plan expires with their session, with a warning; a session about to end is refused', async () => {
    const bsl = api.get('velero.io/v1', 'BackupStorageLocation', 'velero', 'default')!;
    api.put({ ...bsl, metadata: { name: 'temp', namespace: 'velero' }, spec: { ...(bsl.spec as object), credential: undefined } });
    // Backup b1 (the pod's record) as a cluster sees it whose location `temp` has no credential Secret.
    const b1 = api.get('velero.io/v1', 'Backup', 'velero', 'b1')!;
    api.put({ ...b1, spec: { ...(b1.spec as object), storageLocation: 'temp' } });
    const session = (minutes: number) => ({
      ...env,
      AWS_ACCESS_KEY_ID: moto.accessKeyId,
      AWS_SECRET_ACCESS_KEY: moto.secretAccessKey,
      AWS_SESSION_TOKEN: 'FwoGZXIvYXdzEXAMPLESESSION',
      AWS_CREDENTIAL_EXPIRATION: new Date(Date.now() + minutes * 60_000).toISOString(),
    });
    const call = (restore: KubeObject, callEnv: NodeJS.ProcessEnv) =>
      callAction(paths.plugin, { call: 'restore', pluginName: 'velero-plugin-victoria.io/pod-restore', item: asRestored(backedUp), itemFromBackup: backedUp, restore, env: callEnv });
    try {
      const ends = session(20);
      const res = await call(restoreObject('r-session'), ends);
      expect(res.ok, res.error).to.equal(true);
      const url = new URL(argAfter(restoreContainerOf(res.item as PodJson).command!, '--plan-url'));
      expect(url.searchParams.get('X-Amz-Security-Token')).to.equal('FwoGZXIvYXdzEXAMPLESESSION');
      // 20 minutes less the minute of margin (the restore configures 3600 s).
      expect(Number(url.searchParams.get('X-Amz-Expires'))).to.be.within(1100, 1140);
      const plan = JSON.parse((await getObject(`${BSL_PREFIX}/plugins/victoria/_restore-plans/uid-r-session/${NS}.${POD}.json`)).toString('utf8')) as { expiresAt: string };
      expect(Date.parse(ends.AWS_CREDENTIAL_EXPIRATION) - Date.parse(plan.expiresAt)).to.be.within(59_000, 100_000);
      expect(messages(res, 'warn').join('\n')).to.include(
        `the location's credentials are temporary (their session ends at ${ends.AWS_CREDENTIAL_EXPIRATION}), and the links they sign stop working with them: the restore plan is valid until ${plan.expiresAt}, not for restorePlanExpirySeconds (3600 s)`,
      );
      expect(JSON.stringify(res.logs)).not.to.contain('FwoGZXIvYXdzEXAMPLESESSION');

      const soon = await call(restoreObject('r-session-end'), session(1.5));
      expect(soon.ok).to.equal(false);
      expect(soon.error).to.match(/the location's credentials are temporary and expire at \S+, too soon for the restore plan's links, which die with them: run the restore again once they are renewed/);
    } finally {
      api.remove('velero.io/v1', 'BackupStorageLocation', 'velero', 'temp');
      api.put(b1);
    }
  });

  it('a database that runs as a non-root user: the init container restores as root into a directory the kubelet made and gives it all to that user', async () => {
    const dbUser = structuredClone(backedUp);
    const db = dbUser.spec.containers.find((c) => c.name !== COMPANION)!;
    db.securityContext = { runAsUser: 1000, runAsGroup: 2000, runAsNonRoot: true };
    const res = await restorePod(asRestored(dbUser), restoreObject('r-nonroot'), dbUser);
    expect(res.ok, res.error).to.equal(true);
    const init = restoreContainerOf(res.item as PodJson);
    expect(argAfter(init.command!, '--chown')).to.equal('1000:2000');
    expect(init.securityContext).to.deep.include({ runAsUser: 0, runAsNonRoot: false, capabilities: { drop: ['ALL'], add: ['CHOWN', 'DAC_OVERRIDE'] } });
    // Outside the test, a non-root run of the command cannot chown: the same code says so in the engine's tests.
    expect(process.getuid?.(), 'the suite runs as root, as the init container does').to.equal(0);
    const dataDir = join(mkdtempSync(join(tmpdir(), 'restore-nonroot-')), 'victoria-data');
    mkdirSync(dataDir, { mode: 0o755 });
    const restored = await run(paths.plugin, init.command!.slice(1).map((a) => (a === '/victoria-data' ? dataDir : a)).concat('--json'));
    expect(restored.status, restored.stderr + restored.stdout).to.equal(0);
    expect(JSON.parse(restored.stdout.trim().split('\n').at(-1)!)).to.include({ owner: '1000:2000', verified: true });
    const owners = new Map<string, string[]>();
    const walk = (p: string): void => {
      const st = lstatSync(p);
      const who = `${st.uid}:${st.gid}`;
      owners.set(who, [...(owners.get(who) ?? []), relative(dataDir, p) || '.']);
      if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
    };
    walk(dataDir);
    // Everything the database reads and writes is its user's; only the restore's own note stays root's.
    expect([...owners.keys()].sort()).to.deep.equal(['0:0', '1000:2000']);
    expect(owners.get('0:0')).to.deep.equal([RESTORED_NOTE]);
    expect(owners.get('1000:2000')).to.include.members(['.', 'data', 'data/indexdb', 'data/small']);
  });

  it('a pod without a backup record is restored unchanged, with a warning; in a drill it starts on an empty drill path instead of production\'s, with a warning', async () => {
    const plain = asRestored(podObject('vmsingle-5d4f8b7c9-norec'));
    const res = await restorePod(plain, restoreObject('r3'), plain);
    expect(res.ok, res.error).to.equal(true);
    expect(res.item).to.deep.equal(plain);
    expect(messages(res, 'warn').join('\n')).to.contain(
      `pod ${NS}/vmsingle-5d4f8b7c9-norec: no backup record on it (annotation ${RECORD_ANNOTATION}): its Victoria data is not in backup b1 ` +
        "(backed up before the plugin was installed, or not captured: see that backup's log), so the pod is restored unchanged and its database starts on whatever its data volume holds",
    );
    const drill = await restorePod(plain, restoreObject('drill-norec', { [NS]: DRILL_NS }), plain);
    expect(drill.ok, drill.error).to.equal(true);
    const out = drill.item as PodJson;
    expect(out.spec.volumes.find((v) => v.name === 'data')!.hostPath).to.deep.equal({ path: `${HOST_PATH}-drill-drill-norec`, type: 'DirectoryOrCreate' });
    expect(JSON.stringify(out.spec.volumes)).not.to.contain(`"${HOST_PATH}"`);
    expect(out.spec).not.to.have.property('hostNetwork');
    expect(initNames(out), 'nothing to restore').to.deep.equal([]);
    expect(messages(drill, 'warn').join('\n')).to.contain(
      `pod ${NS}/vmsingle-5d4f8b7c9-norec: no backup record on it (annotation ${RECORD_ANNOTATION}): its Victoria data is not in backup b1, and in ${DRILL_NS} it starts on an empty hostPath ${HOST_PATH}-drill-drill-norec (production path ${HOST_PATH} untouched)`,
    );
    // A claim does not come along into a drill (it is bound to the production volume): said, with what to do.
    const claiming = structuredClone(plain);
    (claiming.spec.volumes as unknown[]).push({ name: 'cache', persistentVolumeClaim: { claimName: 'vm-cache' } });
    const withClaim = await restorePod(claiming, restoreObject('drill-claim', { [NS]: DRILL_NS }), claiming);
    expect(withClaim.ok, withClaim.error).to.equal(true);
    expect(messages(withClaim, 'warn').join('\n')).to.contain(
      `pod ${NS}/vmsingle-5d4f8b7c9-norec: drill: it mounts PersistentVolumeClaim(s) vm-cache, which a drill does not restore (a claim from the backup is bound to the production volume): ` +
        `in ${DRILL_NS} the pod stays Pending until claims of those names exist there`,
    );
  });

  it('a backup record that does not parse fails naming the pod, the restore, the backup and the annotation', async () => {
    const edited = { ...backedUp, metadata: { ...backedUp.metadata, annotations: { ...backedUp.metadata.annotations, [RECORD_ANNOTATION]: '{"format":' } } };
    const res = await restorePod(asRestored(edited), restoreObject('r-rec'), edited);
    expect(res.ok).to.equal(false);
    expect(res.error).to.match(
      new RegExp(`pod ${NS}/${backedUp.metadata.name}: its Victoria data cannot be restored by r-rec from backup b1: annotation ${RECORD_ANNOTATION.replace(/[./]/g, '\\$&')} is not JSON .*must not be edited`),
    );
  });

  it('a backup record that names another namespace\'s data is refused: a restore never hands one namespace links to another\'s data', async () => {
    const record = JSON.parse(backedUp.metadata.annotations![RECORD_ANNOTATION]!) as { prefix: string };
    const forged = { ...record, prefix: record.prefix.replace(`/${NS}/`, '/other-tenant/') };
    const copied = { ...backedUp, metadata: { ...backedUp.metadata, annotations: { ...backedUp.metadata.annotations, [RECORD_ANNOTATION]: JSON.stringify(forged) } } };
    const res = await restorePod(asRestored(copied), restoreObject('r-other-ns'), copied);
    expect(res.ok).to.equal(false);
    expect(res.error).to.contain(`pod ${NS}/${backedUp.metadata.name}: its Victoria data cannot be restored by r-other-ns from backup b1: its backup record names data of namespace other-tenant (${forged.prefix}/b1), not of ${NS}`);
    expect(JSON.stringify(res)).not.to.match(/X-Amz-Signature/i);
  });

  it('a companion whose data dir is below its mount (VICTORIA_DATA_DIR=/victoria-data/vm): the restore writes there, not at the volume\'s root', async () => {
    const record = { ...JSON.parse(backedUp.metadata.annotations![RECORD_ANNOTATION]!), dataSubdir: 'vm' };
    const below = { ...backedUp, metadata: { ...backedUp.metadata, annotations: { ...backedUp.metadata.annotations, [RECORD_ANNOTATION]: JSON.stringify(record) } } };
    const res = await restorePod(asRestored(below), restoreObject('r-subdir'), below);
    expect(res.ok, res.error).to.equal(true);
    expect(argAfter(restoreContainerOf(res.item as PodJson).command!, '--data-dir')).to.equal('/victoria-data/vm');
    // Edited to leave the volume: refused, naming the annotation.
    const escaping = { ...below, metadata: { ...below.metadata, annotations: { ...below.metadata.annotations, [RECORD_ANNOTATION]: JSON.stringify({ ...record, dataSubdir: '../etc' }) } } };
    const refused = await restorePod(asRestored(escaping), restoreObject('r-escape'), escaping);
    expect(refused.ok).to.equal(false);
    expect(refused.error).to.include('names data directory "../etc", which is not a directory below the data volume; it is written by the backup action and must not be edited');
  });

  it('fails clearly when the restore cannot be set up: no data mount, no image', async () => {
    const noMount = asRestored(backedUp);
    noMount.spec.containers[1]!.volumeMounts![0]!.mountPath = '/data';
    const res = await restorePod(noMount, restoreObject('r4'), { ...backedUp, spec: noMount.spec });
    expect(res.ok).to.equal(false);
    expect(res.error).to.match(/container "victoria-companion" mounts no volume at \/victoria-data/);

    const velero = api.get('apps/v1', 'Deployment', 'velero', 'velero')!;
    api.put({ ...velero, spec: { template: { spec: { initContainers: [], containers: [{ name: 'velero', image: 'velero/velero:v1.18.1' }] } } } });
    try {
      const noImage = await restorePod(asRestored(backedUp), restoreObject('r5'));
      expect(noImage.ok).to.equal(false);
      expect(noImage.error).to.match(/set restoreImage in the plugin ConfigMap.*velero plugin add/);
      // Velero's own pod (the plugin's host name) names the image whatever the Deployment is called, as Helm names it after the release.
      api.put({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: hostname(), namespace: 'velero' },
        spec: { initContainers: [{ name: 'velero-plugin-victoria', image: 'mirror.example.com/velero-plugin-victoria:v9', imagePullPolicy: 'Always' }], containers: [{ name: 'velero', image: 'velero/velero:v1.16.2' }] },
      });
      try {
        const fromPod = await restorePod(asRestored(backedUp), restoreObject('r5b'));
        expect(fromPod.ok, fromPod.error).to.equal(true);
        expect(restoreContainerOf(fromPod.item as PodJson)).to.include({ image: 'mirror.example.com/velero-plugin-victoria:v9', imagePullPolicy: 'Always' });
      } finally {
        api.remove('v1', 'Pod', 'velero', hostname());
      }
    } finally {
      api.put(velero);
    }
  });

  it('the init container command restores into an empty directory; VictoriaMetrics 1.145 answers the backup counts; companion verify agrees, and not with other counts', async function () {
    const command = restoreContainerOf(drillOutput).command!;
    const dataDir = join(mkdtempSync(join(tmpdir(), 'restore-init-')), 'victoria-data');
    const args = command.slice(1).map((a) => (a === '/victoria-data' ? dataDir : a));
    const restored = await run(paths.plugin, args);
    expect(restored.status, restored.stderr + restored.stdout).to.equal(0);
    expect(restored.stdout + restored.stderr).not.to.match(/X-Amz-Signature=[0-9a-f]/);
    expect(readdirSync(dataDir)).to.include('data');

    // A plan that is not the one the action made is refused before anything is read.
    const tampered = command.slice(1).map((a, i, all) => (all[i - 1] === '--plan-sha256' ? '0'.repeat(64) : a === '/victoria-data' ? join(dataDir, '..', 'other') : a));
    const refused = await run(paths.plugin, tampered);
    expect(refused.status).not.to.equal(0);
    expect(refused.stderr + refused.stdout).to.match(/does not match its SHA-256/);

    const copy = await startVictoriaMetrics(this, { version: '1.145', dataDir });
    try {
      expect(await new MetricsSource({ url: copy.url }).counts()).to.deep.equal({ kind: 'metrics', ...manifestCounts });
      // The drill's hook, exactly as Velero would run it in the companion.
      const hook = JSON.parse(drillOutput.metadata.annotations!['post.hook.restore.velero.io/command']!) as string[];
      const verifyEnv = { VICTORIA_KIND: 'metrics', VICTORIA_URL: copy.url };
      const ok = await run(paths.plugin, hook.slice(1), verifyEnv);
      expect(ok.status, ok.stderr).to.equal(0);
      const okLine = JSON.parse(ok.stdout.trim()) as { verify: string; expected: unknown; found: unknown };
      expect(okLine).to.deep.include({ verify: 'ok', expected: manifestCounts, found: manifestCounts });

      const wrong = { ...manifestCounts, samples: manifestCounts.samples! + 1 };
      const bad = await run(paths.plugin, ['companion', 'verify', '--expect', JSON.stringify(wrong)], verifyEnv);
      expect(bad.status).to.equal(1);
      expect(JSON.parse(bad.stdout.trim())).to.deep.include({ verify: 'mismatch', expected: wrong, found: manifestCounts });
      expect(bad.stderr).to.match(/samples: expected 6001, found 6000/);
      // A URL naming another host (here one that does not resolve; in a cluster a Service that
      // reaches production): --host, which the drill adds then, counts the copy on the URL's port.
      const elsewhere = { ...verifyEnv, VICTORIA_URL: copy.url.replace('127.0.0.1', 'vmsingle.monitoring.svc.invalid') };
      const local = await run(paths.plugin, ['companion', 'verify', '--expect', JSON.stringify(manifestCounts), '--host', '127.0.0.1'], elsewhere);
      expect(local.status, local.stderr).to.equal(0);
      expect(JSON.parse(local.stdout.trim())).to.deep.include({ verify: 'ok', found: manifestCounts });
    } finally {
      await copy.stop();
    }
  });

  it('Velero follows the download (Progress in a fresh plugin process, as its operations controller asks): waiting, running with the progress line, restored; failed runs, a pod gone or replaced, and Cancel', async () => {
    // A Restore of its own: the plan of r1 has been made again by the tests above.
    const made = await restorePod(asRestored(backedUp), restoreObject('r-op'));
    expect(made.ok, made.error).to.equal(true);
    const restoredPod = made.item as PodJson;
    const operation = made.operationID;
    const progress = async () => {
      const r = await callAction(paths.plugin, { call: 'restore', pluginName: 'velero-plugin-victoria.io/pod-restore', progressOf: operation, restore: restoreObject('r-op'), env });
      expect(r.ok, r.error).to.equal(true);
      expect(r.logViolations ?? []).to.deep.equal([]);
      return { ...r.progress!, logs: r.logs };
    };
    const restored = (status: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
      api.put({ ...restoredPod, spec: { ...restoredPod.spec, nodeName: 'db1' }, status: { phase: 'Pending', ...status }, ...extra });
    const initStatus = (fields: Record<string, unknown>) => ({ initContainerStatuses: [{ name: 'victoria-restore', image: PLUGIN_IMAGE, imageID: '', ready: false, restartCount: 0, ...fields }] });
    try {
      // Velero restored the pod; the scheduler has not placed it yet.
      api.put({ ...restoredPod, status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available: 3 node(s) didn\'t match Pod\'s node affinity/selector.' }] } });
      let p = await progress();
      expect(p).to.include({ completed: false, err: '', description: "pod not scheduled yet: 0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector." });
      // Still so 31 minutes after Velero created it (its node is gone): the Restore is told, not kept waiting for hours.
      const unscheduled = api.get('v1', 'Pod', NS, POD)!;
      api.put({ ...unscheduled, metadata: { ...unscheduled.metadata, creationTimestamp: new Date(Date.now() - 31 * 60_000).toISOString() } });
      p = await progress();
      expect(p.completed).to.equal(true);
      expect(p.err).to.match(new RegExp(`^pod ${NS}/${POD}: has not got its init container victoria-restore going in 31 minutes \\(pod not scheduled yet: 0/3 nodes are available`));

      // The init container runs: the real command into an empty directory, its output as the container's log.
      const command = restoreContainerOf(restoredPod).command!;
      const dataDir = join(mkdtempSync(join(tmpdir(), 'restore-op-')), 'victoria-data');
      const ran = await run(paths.plugin, command.slice(1).map((a) => (a === '/victoria-data' ? dataDir : a)));
      expect(ran.status, ran.stderr).to.equal(0);
      const started = '2026-11-23T10:00:00Z';
      restored(initStatus({ state: { running: { startedAt: started } } }));
      api.setLog(NS, POD, 'victoria-restore', `${ran.stderr}${ran.stdout}`);
      const lastLine = `${ran.stderr}${ran.stdout}`.trim().split('\n').at(-1)!;
      p = await progress();
      expect(p).to.include({ completed: false, err: '', description: `victoria-restore running: ${lastLine}` });
      // The operation started when the pod was created, whichever run is on.
      expect(p.started).to.equal(api.get('v1', 'Pod', NS, POD)!.metadata.creationTimestamp);
      expect(p.description).not.to.match(/X-Amz-Signature=[0-9a-f]/);

      restored(initStatus({ state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: started, finishedAt: '2026-11-23T10:01:00Z' } } }));
      p = await progress();
      expect(p).to.include({ completed: true, err: '', description: 'victoria-restore: data restored and verified' });
      expect(p.logs.map((l) => String(l['@message']))).to.include(`pod ${NS}/${POD}: victoria-restore: data restored and verified`);

      // The same command into a directory that holds something else: its real refusal, three runs.
      const occupied = mkdtempSync(join(tmpdir(), 'restore-op-occupied-'));
      writeFileSync(join(occupied, 'unrelated.txt'), 'x');
      const refused = await run(paths.plugin, command.slice(1).map((a) => (a === '/victoria-data' ? occupied : a)));
      expect(refused.status).to.equal(1);
      const message = `${refused.stdout}${refused.stderr}`;
      const reason = message.trim().split('\n').at(-1)!;
      // The kubelet's count: a run that failed and waits for its restart is not counted yet.
      restored(initStatus({ restartCount: 0, state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 10s' } }, lastState: { terminated: { exitCode: 1, reason: 'Error', message } } }));
      p = await progress();
      expect(p.completed).to.equal(false);
      expect(p.description).to.equal(`failed 1 time(s) (at 3 this restore fails), last: ${reason}; victoria-restore waiting: CrashLoopBackOff (back-off 10s)`);
      restored(initStatus({ restartCount: 2, state: { terminated: { exitCode: 1, reason: 'Error', message } } }));
      p = await progress();
      expect(p.completed).to.equal(true);
      expect(p.err).to.equal(
        `pod ${NS}/${POD}: init container victoria-restore failed 3 time(s), last: ${reason}; Kubernetes goes on restarting it, but this restore counts its data as not restored; ` +
          `kubectl logs -n ${NS} ${POD} -c victoria-restore shows the whole run (docs/velero-restore.md, "Messages and what to do")`,
      );
      expect(p.logs.filter((l) => l['@level'] === 'warn').map((l) => String(l['@message']))).to.deep.equal([`restore operation failed: ${p.err}`]);

      // Another restore's pod of the same name, and no pod at all.
      const other = restoreContainerOf(restoredPod);
      const otherCommand = other.command!.map((a, i, all) => (all[i - 1] === '--plan-sha256' ? 'f'.repeat(64) : a));
      api.put({ ...restoredPod, spec: { ...restoredPod.spec, initContainers: [{ ...other, command: otherCommand }] } });
      expect((await progress()).err).to.match(new RegExp(`^pod ${NS}/${POD}: it is not the pod this restore created`));
      api.remove('v1', 'Pod', NS, POD);
      expect((await progress()).err).to.match(new RegExp(`^pod ${NS}/${POD}: does not exist: Velero could not create it .* or it was deleted before its init container victoria-restore had restored its Victoria data`));

      // RBAC that does not let Velero read the pod fails the operation with the rule to grant; a 503 leaves it running.
      const allow = api.forbid('get', 'pods');
      p = await progress();
      allow();
      expect(p.completed).to.equal(true);
      expect(p.err, p.err).to.match(/the Victoria data of pod monitoring\/vmsingle-5d4f8b7c9-x2x9q cannot be followed: cannot read pods "vmsingle-5d4f8b7c9-x2x9q" in namespace monitoring: 403 Forbidden: .*; grant get on pods in namespace monitoring/);
      api.unavailable('get', 'pods', 1);
      p = await progress();
      expect(p).to.include({ completed: false });
      expect(p.description).to.match(/; asking again$/);

      // Velero cancels at the Restore's itemOperationTimeout: the init container is left to finish, with a warning.
      const cancelled = await callAction(paths.plugin, { call: 'restore', pluginName: 'velero-plugin-victoria.io/pod-restore', cancelOf: operation, restore: restoreObject('r-op'), env });
      expect(cancelled.ok, cancelled.error).to.equal(true);
      expect(cancelled.logs.map((l) => String(l['@message']))).to.deep.equal([
        `pod ${NS}/${POD}: the Restore's itemOperationTimeout passed before init container victoria-restore had restored its Victoria data; it is not stopped, and the database starts once the data is restored (kubectl get pod shows when); ` +
          'for restores this long, give the Restore a longer timeout (velero restore create --item-operation-timeout, docs/velero-restore.md)',
      ]);
    } finally {
      api.remove('v1', 'Pod', NS, POD);
      api.setLog(NS, POD, 'victoria-restore', undefined);
    }
  });

  it('VictoriaLogs: backed up and restored through Velero, every partition lands under partitions/YYYYMMDD, the server answers the backup counts, companion verify agrees', async function () {
    const vl = await startVictoriaLogs(this, { authKey: 'pm-key' });
    const vlPod = 'vlogs-5d4f8b7c9-k2m4p';
    const vlState = mkdtempSync(join(tmpdir(), 'companion-state-vl-'));
    const vlEnv = () => ({ VICTORIA_KIND: 'logs', VICTORIA_URL: vl.url, VICTORIA_DATA_DIR: vl.dataDir, VICTORIA_AUTH_KEY: 'pm-key', COMPANION_STATE_DIR: vlState });
    let copy: VlServer | undefined;
    try {
      const ingested = await vl.ingest(600, 3);
      addWorkload(vlPod, 'logs', vlEnv);

      // The same Velero backup b1 holds both pods: hooks, then the pod backup action.
      expect((await run(paths.plugin, ['companion', 'hook', 'pre'], vlEnv())).status).to.equal(0);
      const backup = await backupPod(vlPod, 'b1');
      expect((await run(paths.plugin, ['companion', 'hook', 'post'], vlEnv())).status).to.equal(0);
      expect(backup.ok, backup.error).to.equal(true);
      const backedUpLogs = backup.item as PodJson;
      const expected = { rows: ingested.rows, ...Object.fromEntries(Object.entries(ingested.perDay).map(([d, n]) => [`rows.${d}`, n])) };

      // A drill restore of it: the drill hostPath, the restore init container, the verify hook with the per-day counts.
      const res = await restorePod(asRestored(backedUpLogs), restoreObject('drill-vl', { [NS]: DRILL_NS }), backedUpLogs);
      expect(res.ok, res.error).to.equal(true);
      expectNoSecrets(res);
      const out = res.item as PodJson;
      expect(out.spec.volumes.find((v) => v.name === 'data')!.hostPath).to.deep.equal({ path: '/var/lib/victoria-logs-drill-drill-vl', type: 'DirectoryOrCreate' });
      expect(messages(res, 'info').join('\n')).to.match(/restoring logs backup b1 of Deployment\/vlogs/);
      const hook = JSON.parse(out.metadata.annotations!['post.hook.restore.velero.io/command']!) as string[];
      expect(JSON.parse(hook[4]!)).to.deep.equal(expected);
      // The server keeps 30 days: the backup counted from an hour inside them, and the drill counts the same range.
      const from = Date.parse(hook[hook.indexOf('--start') + 1]!);
      expect(Date.now() - from).to.be.within(30 * 86400_000 - 3600_000, 30 * 86400_000 - 3600_000 + 600_000);
      expect(hook[hook.indexOf('--end') + 1]).to.match(/^\d{4}-\d\d-\d\dT/);

      // The init container's command, here, into an empty directory.
      const dataDir = join(mkdtempSync(join(tmpdir(), 'restore-init-vl-')), 'victoria-data');
      const args = restoreContainerOf(out).command!.slice(1).map((a) => (a === '/victoria-data' ? dataDir : a));
      const restored = await run(paths.plugin, args);
      expect(restored.status, restored.stderr + restored.stdout).to.equal(0);
      expect(readdirSync(join(dataDir, 'partitions')).sort()).to.deep.equal(Object.keys(ingested.perDay).sort());

      copy = await startVictoriaLogs(this, { dataDir });
      const found = await new LogsSource({ url: copy.url }).counts();
      expect(found).to.deep.include({ rows: ingested.rows, partitions: ingested.perDay });
      const verified = await run(paths.plugin, hook.slice(1), { VICTORIA_KIND: 'logs', VICTORIA_URL: copy.url });
      expect(verified.status, verified.stderr).to.equal(0);
      expect(JSON.parse(verified.stdout.trim())).to.deep.include({ verify: 'ok', expected, found: expected });
    } finally {
      await copy?.stop();
      await vl.stop();
      rmSync(vlState, { recursive: true, force: true });
    }
  });

  it('plans of earlier restores are deleted once expired (by later restores), current ones and backups are kept', async () => {
    const store = new S3Store({ ...moto.s3Options, bucket: moto.bucket, prefix: `${BSL_PREFIX}/plugins/victoria` });
    try {
      const keys = async (prefix: string) => {
        const out: string[] = [];
        for await (const o of store.list(prefix)) out.push(o.key);
        return out;
      };
      const plans = await keys(`${PLAN_FOLDER}/`);
      expect(plans.length, 'the restores above wrote plans').to.be.greaterThan(2);
      // Objects that are not plans: the folder a namespace called restore-plans would have (the
      // plans' folder had that name once), and a deeper key in the plans' folder.
      const others = ['restore-plans/vmsingle/daily-1/victoria_manifest.ignore', `${PLAN_FOLDER}/uid-x/nested/notes.json`];
      for (const k of others) await store.put(k, Buffer.from('{}'), 2);
      const backups = await keys(`${NS}/`);
      expect(await removeExpiredPlans(store)).to.equal(0);
      expect(await keys(`${PLAN_FOLDER}/`)).to.deep.equal([...plans, others[1]].sort());
      // Eight days on, every link in them has expired (presigned URLs live 7 days at most).
      expect(await removeExpiredPlans(store, new Date(Date.now() + 8 * 86_400_000))).to.equal(plans.length);
      expect(await keys(`${PLAN_FOLDER}/`)).to.deep.equal([others[1]]);
      expect(await keys(`${NS}/`)).to.deep.equal(backups);
      expect(await keys('restore-plans/')).to.deep.equal([others[0]]);
      await store.delete(others);
    } finally {
      store.destroy();
    }
  });

  it('companion verify gives up when the database never answers', async () => {
    const res = await run(paths.plugin, ['companion', 'verify', '--expect', JSON.stringify(manifestCounts), '--timeout', '2s'], { VICTORIA_KIND: 'metrics', VICTORIA_URL: 'http://127.0.0.1:9' });
    expect(res.status).to.equal(1);
    expect(JSON.parse(res.stdout.trim())).to.include({ verify: 'error' });
    expect(res.stderr).to.match(/did not answer \/health within 2 s/);
  });
});

describe('restore action pieces: drill paths, security context, restore settings', () => {
  it('a drill path is never the production path, nor inside or above it', () => {
    const values = { path: '/var/lib/vm/', restore: 'drill-1', namespace: 'monitoring-drill' };
    expect(drillPath('{path}-drill-{restore}', values)).to.equal('/var/lib/vm-drill-drill-1');
    expect(drillPath('/srv/drills/{namespace}/{restore}{path}', values)).to.equal('/srv/drills/monitoring-drill/drill-1/var/lib/vm');
    expect(() => drillPath('{path}/{restore}', values)).to.throw(/must not write into, above or below the production data/);
    expect(() => drillPath('/var/{restore}/../lib/vm', values)).to.throw(/not a clean absolute path/);
    expect(() => drillPath('/var/lib/vm{namespace}', { ...values, namespace: '' })).to.throw(/must not write into/);
  });

  it('the init container runs as root for the database: with CHOWN to give the files to a non-root database user, else as the image\'s non-root user', () => {
    const pod = (sc?: Record<string, unknown>, podSc?: Record<string, unknown>) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      spec: {
        ...(podSc ? { securityContext: podSc } : {}),
        containers: [
          { name: 'victoria-metrics', volumeMounts: [{ name: 'data', mountPath: '/storage' }], ...(sc ? { securityContext: sc } : {}) },
          { name: COMPANION, securityContext: { runAsUser: 65532 }, volumeMounts: [{ name: 'data', mountPath: '/victoria-data', readOnly: true }] },
        ],
      },
    });
    // A non-root database user: root with CHOWN and DAC_OVERRIDE only, and the files go to that user.
    const nonRoot = pod({ runAsUser: 1000, runAsGroup: 2000, privileged: true });
    const asUser = restoreIdentity(nonRoot, 'data', COMPANION).securityContext;
    expect(asUser).to.deep.include({
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'], add: ['CHOWN', 'DAC_OVERRIDE'] },
    });
    expect(asUser).not.to.have.property('privileged');
    expect(restoreIdentity(nonRoot, 'data', COMPANION).chown).to.deep.equal({ uid: 1000, gid: 2000 });
    // The database as root, or as its image's user (root for the Victoria images): root, DAC_OVERRIDE, no chown.
    expect(restoreIdentity(pod(), 'data', COMPANION).securityContext).to.deep.include({ runAsUser: 0, runAsGroup: 0, runAsNonRoot: false, capabilities: { drop: ['ALL'], add: ['DAC_OVERRIDE'] } });
    expect(restoreIdentity(pod(), 'data', COMPANION).chown).to.equal(undefined);
    expect(restoreIdentity(pod({ runAsUser: 0 }), 'data', COMPANION).chown).to.equal(undefined);
    // The pod names the user: the same, and a pod-level seccomp profile is inherited, not replaced.
    const podUser = pod(undefined, { runAsUser: 1000, seccompProfile: { type: 'Localhost', localhostProfile: 'p.json' } });
    const fromPod = restoreIdentity(podUser, 'data', COMPANION).securityContext;
    expect(fromPod).to.deep.include({ runAsUser: 0, capabilities: { drop: ['ALL'], add: ['CHOWN', 'DAC_OVERRIDE'] } });
    expect(fromPod).not.to.have.property('seccompProfile');
    expect(restoreIdentity(podUser, 'data', COMPANION).chown).to.deep.equal({ uid: 1000 });
    // runAsNonRoot without a user: the image's user, which only the image knows; nothing added.
    const imageUser = restoreIdentity(pod({ runAsNonRoot: true }), 'data', COMPANION).securityContext;
    expect(imageUser).to.deep.include({ runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
    expect(imageUser).not.to.have.property('runAsUser');
    // restoreSecurityContext, the user's choice: each field it sets wins, the others stay locked down.
    expect(lockedDown(pod(), { runAsUser: 1000, runAsGroup: 1000 })).to.deep.equal({
      runAsUser: 1000,
      runAsGroup: 1000,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      readOnlyRootFilesystem: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(lockedDown(podUser, { readOnlyRootFilesystem: false, capabilities: { drop: ['ALL'], add: ['CHOWN'] } })).to.deep.equal({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'], add: ['CHOWN'] },
      readOnlyRootFilesystem: false,
    });
  });

  it('a drill database keeps every sample: -retentionPeriod=100y last in the args of the containers on the data volume, once', () => {
    const spec = {
      containers: [
        { name: 'victoria-metrics', args: ['-storageDataPath=/storage', '-retentionPeriod=1'], volumeMounts: [{ name: 'data', mountPath: '/storage' }] },
        { name: COMPANION, args: ['companion', 'serve'], volumeMounts: [{ name: 'data', mountPath: '/victoria-data', readOnly: true }] },
        { name: 'vmagent', args: ['-remoteWrite.url=http://localhost:8428'] },
        { name: 'wrapped', command: ['/bin/sh', '-c', 'exec /victoria-metrics-prod -storageDataPath=/storage'], volumeMounts: [{ name: 'data', mountPath: '/storage' }] },
      ],
    };
    const r = withDrillRetention(spec, 'data', COMPANION);
    expect(r.changed).to.deep.equal(['victoria-metrics']);
    expect(r.skipped).to.deep.equal(['wrapped']);
    expect(r.spec.containers![0]!.args).to.deep.equal(['-storageDataPath=/storage', '-retentionPeriod=1', DRILL_RETENTION_ARG]);
    expect(r.spec.containers!.slice(1)).to.deep.equal(spec.containers.slice(1));
    expect(spec.containers[0]!.args, 'the input is not changed').to.have.length(2);
    expect(withDrillRetention(r.spec, 'data', COMPANION).spec, 'again on its own output').to.deep.equal(r.spec);
    // An image's entrypoint with no args at all (the official images have no CMD) gets the flag as its only arg.
    expect(withDrillRetention({ containers: [{ name: 'db', volumeMounts: [{ name: 'data', mountPath: '/s' }] }] }, 'data', COMPANION).spec.containers![0]!.args).to.deep.equal([DRILL_RETENTION_ARG]);
    expect(drillRetentionNote(r)).to.match(/victoria-metrics run with -retentionPeriod=100y.*wrapped start through a shell/);
  });

  it('a drill pod runs on the pod network: hostNetwork and every hostPort go, nothing else changes', () => {
    const spec = {
      hostNetwork: true,
      dnsPolicy: 'ClusterFirstWithHostNet',
      initContainers: [{ name: 'init', ports: [{ containerPort: 1, hostPort: 1 }] }],
      containers: [
        { name: 'victoria-metrics', ports: [{ name: 'http', containerPort: 8428, hostPort: 8428, protocol: 'TCP' }], volumeMounts: [{ name: 'data', mountPath: '/storage' }] },
        { name: COMPANION, args: ['companion', 'serve'] },
      ],
    };
    const r = withDrillNetwork(spec);
    expect(r.changed).to.equal(true);
    expect(r.spec).to.deep.equal({
      dnsPolicy: 'ClusterFirstWithHostNet', // what a pod off the host network does with it is ClusterFirst
      initContainers: [{ name: 'init', ports: [{ containerPort: 1 }] }],
      containers: [{ ...spec.containers[0]!, ports: [{ name: 'http', containerPort: 8428, protocol: 'TCP' }] }, spec.containers[1]],
    });
    expect(spec.hostNetwork, 'the input is not changed').to.equal(true);
    expect(spec.containers[0]!.ports).to.deep.equal([{ name: 'http', containerPort: 8428, hostPort: 8428, protocol: 'TCP' }]);
    const again = withDrillNetwork(r.spec);
    expect(again).to.deep.equal({ spec: r.spec, changed: false });
    expect(drillNetworkNote(again)).to.equal('');
    expect(withDrillNetwork({ hostNetwork: false, containers: [{ name: 'db' }] }).changed).to.equal(false);
  });

  it('the restored database keeps data for its last -retentionPeriod, else its default', () => {
    const spec = (c: Record<string, unknown>) => ({ containers: [{ name: 'db', volumeMounts: [{ name: 'data', mountPath: '/s' }], ...c }, { name: COMPANION, args: ['-retentionPeriod=1d'] }] });
    const DAY = 86_400_000;
    expect(databaseRetention(spec({ args: ['--retentionPeriod=2', '-retentionPeriod', '3d'] }), 'data', COMPANION, 'metrics')).to.deep.equal({ value: '3d', ms: 3 * DAY, isDefault: false });
    expect(databaseRetention(spec({ command: ['/victoria-logs-prod', '-retentionPeriod=14d'] }), 'data', COMPANION, 'logs')).to.deep.equal({ value: '14d', ms: 14 * DAY, isDefault: false });
    expect(databaseRetention(spec({}), 'data', COMPANION, 'metrics')).to.deep.equal({ value: '1', ms: 31 * DAY, isDefault: true });
    expect(databaseRetention(spec({}), 'data', COMPANION, 'logs')).to.deep.equal({ value: '7d', ms: 7 * DAY, isDefault: true });
    expect(databaseRetention(spec({ args: ['-retentionPeriod=forever'] }), 'data', COMPANION, 'metrics')).to.equal(undefined);
    expect(databaseRetention({ containers: [{ name: COMPANION }] }, 'data', COMPANION, 'metrics')).to.equal(undefined);
  });

  it('restore settings are checked, with a message naming the key and what it must be', () => {
    const where = 'configmaps "velero-plugin-victoria" in namespace velero';
    const config = parsePluginConfig(
      { restoreImage: 'mirror.example.com:5000/velero-plugin-victoria:v0.1.0', restoreReplace: 'true', restoreDirectIo: 'false', restorePlanExpirySeconds: '600', restoreSecurityContext: '{"runAsUser":1000}', drillPathPattern: '/srv/drills/{namespace}/{restore}{path}' },
      where,
    );
    expect(config).to.deep.include({ restoreImage: 'mirror.example.com:5000/velero-plugin-victoria:v0.1.0', restoreReplace: true, restoreDirectIo: false, restorePlanExpirySeconds: 600, restoreSecurityContext: { runAsUser: 1000 }, drillPathPattern: '/srv/drills/{namespace}/{restore}{path}' });
    expect(() => parsePluginConfig({ restoreDirectIo: 'no' }, where)).to.throw(/restoreDirectIo/);
    expect(parsePluginConfig({ restoreMaxBytesPerSecond: '50MB', maxBytesPerSecond: '100MiB' }, where)).to.deep.include({ restoreMaxBytesPerSecond: 50e6, maxBytesPerSecond: 100 * 2 ** 20 });
    expect(() => parsePluginConfig({ restoreMaxBytesPerSecond: '50 megs' }, where)).to.throw(
      /restoreMaxBytesPerSecond is "50 megs", it must be a number of bytes per second such as 52428800, 50MiB or 1.5GB .*, or 0 for no limit/,
    );
    expect(() => parsePluginConfig({ maxBytesPerSecond: '1KiB' }, where)).to.throw(/maxBytesPerSecond is "1KiB", it must be 0 \(no limit\) or at least 64KiB per second/);
    expect(() => parsePluginConfig({ drillPathPattern: '{path}' }, where)).to.throw(/drillPathPattern is "\{path\}", it must be a path pattern containing \{restore\} or \{namespace\}/);
    expect(() => parsePluginConfig({ drillPathPattern: '{path}-{node}' }, where)).to.throw(/not \{node\}/);
    // Without {path}, a drill's VictoriaMetrics and VictoriaLogs (or two workloads) would share one directory.
    expect(() => parsePluginConfig({ drillPathPattern: '/srv/drills/{namespace}/{restore}' }, where)).to.throw(/it must be a path pattern containing \{path\}, so that each data volume of a drill gets a directory of its own/);
    expect(() => parsePluginConfig({ restorePlanExpirySeconds: '1000000' }, where)).to.throw(/restorePlanExpirySeconds .* from 300 to 604800/);
    expect(() => parsePluginConfig({ restoreResources: '{"limit":{"memory":"1Gi"}}' }, where)).to.throw(/restoreResources .*(not "limit")/);
    expect(() => parsePluginConfig({ restoreSecurityContext: '{"runAsUsr":0}' }, where)).to.throw(/"runAsUsr" is not a field/);
  });
});
