/**
 * The Kubernetes access layer against the loopback API stand-in (test/support/kube-api.ts):
 * client-node reads through a kubeconfig (TLS with our CA, bearer token), with the API server's own
 * 401/403/404 answers turned into messages that say what to fix; and exec over WebSocket with v5
 * and with a v4-only server: stdin, exit codes, stderr in errors, a 64 MiB stream to a slow
 * consumer in bounded memory, a cut stream, a hung one, timeouts and cancellation; stdin held open
 * for the exec's life, and the stand-in's kubelet-like end of a session whose client went away;
 * collected stdout within a limit, and the companion client's limit for each of its commands.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, Exec, type V1Status } from '@kubernetes/client-node';
import { KubeClient, loadKubeConfig } from '../../src/kube/client.js';
import { ExecError, KubeError } from '../../src/kube/errors.js';
import { execInPod, type ExecOptions } from '../../src/kube/exec.js';
import { CompanionClient, LINE_STDOUT_LIMIT } from '../../src/actions/companion-client.js';
import { DEFAULT_CONFIG } from '../../src/actions/plugin-config.js';
import { EXECUTABLE } from '../../src/actions/names.js';
import { COMPANION_FILES_FORMAT, type CompanionFiles } from '../../src/companion/protocol.js';
import { makePod, runLocally, startKubeApi, V4, V5, type ExecTarget, type KubeApiServer } from '../support/kube-api.js';

const MiB = 1024 * 1024;

async function rejection<T extends Error>(p: Promise<unknown>, type: new (...args: never[]) => T): Promise<T> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(type);
    return err as T;
  }
  throw new Error('expected a rejection');
}

/** A kubeconfig for `api` whose server or token is changed. */
function alteredKubeconfig(api: KubeApiServer, change: { server?: string; token?: string }): string {
  const config = JSON.parse(readFileSync(api.writeKubeconfig(), 'utf8'));
  if (change.server) config.clusters[0].cluster.server = change.server;
  if (change.token) config.users[0].user.token = change.token;
  const file = join(mkdtempSync(join(tmpdir(), 'kubeconfig-')), 'config');
  writeFileSync(file, JSON.stringify(config));
  return file;
}

function fixtures(api: KubeApiServer): void {
  api.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'velero' } });
  api.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'monitoring' } });
  api.put({
    apiVersion: 'velero.io/v1',
    kind: 'BackupStorageLocation',
    metadata: { name: 'default', namespace: 'velero' },
    spec: {
      provider: 'aws',
      objectStorage: { bucket: 'backups', prefix: 'cluster-a' },
      config: { region: 'us-east-1', s3Url: 'http://minio:9000', s3ForcePathStyle: 'true' },
      credential: { name: 'cloud-credentials', key: 'cloud' },
    },
    status: { phase: 'Available' },
  });
  api.put({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'cloud-credentials', namespace: 'velero' },
    type: 'Opaque',
    data: { cloud: Buffer.from('[default]\naws_access_key_id=AKIA\naws_secret_access_key=TOPSECRET\n').toString('base64') },
  });
  api.put({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'victoria-plugin-config', namespace: 'velero', labels: { 'velero.io/plugin-config': '', 'velero-plugin-victoria.io/pod-backup': 'BackupItemAction' } },
    data: { uploadConcurrency: '2' },
  });
  api.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'unrelated', namespace: 'velero', labels: { app: 'x' } }, data: {} });
  const owner = (kind: string, name: string) => [{ apiVersion: 'apps/v1', kind, name, uid: `uid-${name}`, controller: true }];
  api.put(makePod('monitoring', 'vm-0', ['victoria-metrics', 'victoria-companion'], { labels: { 'velero-plugin-victoria.io/kind': 'metrics' }, ownerReferences: owner('StatefulSet', 'vm') }));
  api.put(makePod('monitoring', 'vl-7d9f-abcde', ['victoria-logs', 'victoria-companion'], { labels: { 'velero-plugin-victoria.io/kind': 'logs' }, ownerReferences: owner('ReplicaSet', 'vl-7d9f') }));
  api.put(makePod('monitoring', 'grafana-1', ['grafana'], { labels: { app: 'grafana' } }));
  api.put({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'vm', namespace: 'monitoring' }, spec: { replicas: 1 } });
  api.put({ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'vl-7d9f', namespace: 'monitoring', ownerReferences: owner('Deployment', 'vl') }, spec: { replicas: 1 } });
  api.put({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'vl', namespace: 'monitoring' }, spec: { replicas: 1 } });
}

describe('kube: client-node against the API stand-in', function () {
  let api: KubeApiServer;
  let client: KubeClient;

  before(async function () {
    api = await startKubeApi();
    fixtures(api);
    client = KubeClient.load({ kubeconfig: api.writeKubeconfig({ namespace: 'velero' }), env: {} });
  });
  after(async () => api?.close());

  it('loads a kubeconfig: server, CA, token and the context namespace; KUBECONFIG; no configuration is a clear error', async function () {
    expect(client.server).to.equal(api.url);
    const contextNamespace = (kc: typeof client.kubeConfig) => kc.getContextObject(kc.getCurrentContext())?.namespace;
    expect(contextNamespace(client.kubeConfig)).to.equal('velero');
    const fromEnv = loadKubeConfig({ env: { KUBECONFIG: api.writeKubeconfig({ namespace: 'monitoring' }) } });
    expect(contextNamespace(fromEnv)).to.equal('monitoring');
    expect(fromEnv.getCurrentCluster()?.server).to.equal(api.url);
    let err = (() => {
      try {
        loadKubeConfig({ env: { KUBECONFIG: '/nonexistent/kubeconfig' } });
      } catch (e) {
        return e as KubeError;
      }
      throw new Error('expected an error');
    })();
    expect(err.code).to.equal('Config');
    expect(err.message).to.match(/^cannot load kubeconfig \/nonexistent\/kubeconfig: ENOENT/);
    err = (() => {
      try {
        loadKubeConfig({ env: { HOME: mkdtempSync(join(tmpdir(), 'home-')) } });
      } catch (e) {
        return e as KubeError;
      }
      throw new Error('expected an error');
    })();
    expect(err.message).to.equal('no Kubernetes configuration: not running in a pod with a service account, KUBECONFIG is not set and there is no ~/.kube/config');
    // A broken kubeconfig: the reason and the position, not the lines around it (a token here).
    const broken = join(mkdtempSync(join(tmpdir(), 'kubeconfig-')), 'config');
    writeFileSync(broken, 'apiVersion: v1\nusers:\n- name: u\n  user:\n    token: sha256~SeCrEtToKeN123\n   bad: [indent\n');
    err = (() => {
      try {
        loadKubeConfig({ kubeconfig: broken, env: {} });
      } catch (e) {
        return e as KubeError;
      }
      throw new Error('expected an error');
    })();
    expect(err.code).to.equal('Config');
    expect(err.message).to.match(new RegExp(`^cannot load kubeconfig ${broken}: not valid YAML: .+ at line \\d+, column \\d+$`));
    expect(err.message).not.to.contain('SeCrEtToKeN123');
  });

  it('reads a BackupStorageLocation (velero.io/v1) by namespace and name', async function () {
    const bsl = await client.getBackupStorageLocation('velero', 'default');
    expect(bsl.spec.objectStorage).to.deep.equal({ bucket: 'backups', prefix: 'cluster-a' });
    expect(bsl.spec.credential).to.deep.equal({ name: 'cloud-credentials', key: 'cloud' });
    expect(bsl.spec.config?.s3Url).to.equal('http://minio:9000');
    const last = api.requests.at(-1)!;
    expect(last).to.include({ method: 'GET', path: '/apis/velero.io/v1/namespaces/velero/backupstoragelocations/default', status: 200 });
  });

  it('reads a Secret and one decoded key; a missing key lists the key names but never a value', async function () {
    const secret = await client.getSecret('velero', 'cloud-credentials');
    expect(Object.keys(secret.data ?? {})).to.deep.equal(['cloud']);
    expect((await client.getSecretKey('velero', 'cloud-credentials', 'cloud')).toString()).to.contain('aws_secret_access_key=TOPSECRET');
    const err = await rejection(client.getSecretKey('velero', 'cloud-credentials', 'credentials'), KubeError);
    expect(err.code).to.equal('NotFound');
    expect(err.message).to.equal('secret "cloud-credentials" in namespace velero has no key "credentials" (its keys: cloud); fix the key name that refers to it');
    expect(err.message).not.to.contain('TOPSECRET');
  });

  it('reads a Pod, its ReplicaSet and a Deployment', async function () {
    const pod = await client.getPod('monitoring', 'vl-7d9f-abcde');
    expect(pod.spec?.containers.map((c) => c.name)).to.deep.equal(['victoria-logs', 'victoria-companion']);
    expect(pod.metadata?.ownerReferences?.[0]).to.include({ kind: 'ReplicaSet', name: 'vl-7d9f' });
    const rs = await client.getReplicaSet('monitoring', 'vl-7d9f');
    expect(rs.metadata?.ownerReferences?.[0]).to.include({ kind: 'Deployment', name: 'vl' });
    expect((await client.getDeployment('monitoring', 'vl')).spec?.replicas).to.equal(1);
  });

  it('lists pods and ConfigMaps by label selector (equality, in, exists)', async function () {
    const names = (items: Array<{ metadata?: { name?: string } }>) => items.map((i) => i.metadata?.name).sort();
    expect(names(await client.listPods('monitoring', 'velero-plugin-victoria.io/kind in (metrics,logs)'))).to.deep.equal(['vl-7d9f-abcde', 'vm-0']);
    expect(names(await client.listPods('monitoring', 'velero-plugin-victoria.io/kind=logs'))).to.deep.equal(['vl-7d9f-abcde']);
    expect(names(await client.listPods('monitoring', '!velero-plugin-victoria.io/kind'))).to.deep.equal(['grafana-1']);
    expect(names(await client.listPods('velero', 'velero-plugin-victoria.io/kind'))).to.deep.equal([]);
    const cms = await client.listConfigMaps('velero', 'velero.io/plugin-config,velero-plugin-victoria.io/pod-backup=BackupItemAction');
    expect(names(cms)).to.deep.equal(['victoria-plugin-config']);
    expect(cms[0]!.data).to.deep.equal({ uploadConcurrency: '2' });
    const last = api.requests.at(-1)!;
    expect(last.path).to.equal('/api/v1/namespaces/velero/configmaps');
    expect(last.query.get('labelSelector')).to.equal('velero.io/plugin-config,velero-plugin-victoria.io/pod-backup=BackupItemAction');
  });

  it('stand-in: fieldSelector on metadata.name, cluster-wide lists, and a bad selector is a 400 Status', async function () {
    const core = client.kubeConfig.makeApiClient(CoreV1Api);
    const all = await core.listPodForAllNamespaces({ fieldSelector: 'metadata.name=vm-0' });
    expect(all.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`)).to.deep.equal(['monitoring/vm-0']);
    expect((await core.listNamespace()).items.map((n) => n.metadata?.name).sort()).to.deep.equal(['monitoring', 'velero']);
    const err = await rejection(client.listPods('monitoring', 'a in (b'), KubeError);
    expect(err.status).to.equal(400);
    expect(err.message).to.match(/^cannot list pods with labels "a in \(b" in namespace monitoring: 400 BadRequest: unable to parse requirement/);
  });

  it('404 names the object the way the API server does', async function () {
    let err = await rejection(client.getPod('monitoring', 'gone'), KubeError);
    expect(err.code).to.equal('NotFound');
    expect(err.message).to.equal('cannot read pods "gone" in namespace monitoring: 404 NotFound: pods "gone" not found; check the name and the namespace');
    err = await rejection(client.getBackupStorageLocation('velero', 'secondary'), KubeError);
    expect(err.message).to.equal(
      'cannot read backupstoragelocations.velero.io "secondary" in namespace velero: 404 NotFound: backupstoragelocations.velero.io "secondary" not found; check the name and the namespace',
    );
  });

  it('401: a wrong token says to check the credentials, for reads and for exec', async function () {
    const wrong = KubeClient.load({ kubeconfig: alteredKubeconfig(api, { token: 'not-the-token' }), env: {} });
    const err = await rejection(wrong.getSecret('velero', 'cloud-credentials'), KubeError);
    expect(err.code).to.equal('Unauthorized');
    expect(err.message).to.match(/^cannot read secrets "cloud-credentials" in namespace velero: 401 Unauthorized; the API server did not accept our credentials/);
    const execErr = await rejection(execInPod({ kubeConfig: wrong.kubeConfig, namespace: 'monitoring', pod: 'vm-0', container: 'victoria-companion', command: ['true'] }), ExecError);
    expect(execErr.code).to.equal('Unauthorized');
    expect(execErr.message).to.contain('401 Unauthorized: Unauthorized; the API server did not accept our credentials');
  });

  it('403: names the RBAC rule to grant', async function () {
    const denied = await startKubeApi();
    try {
      fixtures(denied);
      denied.forbid('get', 'secrets', 'velero');
      denied.forbid('list', 'configmaps');
      const c = KubeClient.load({ kubeconfig: denied.writeKubeconfig(), env: {} });
      let err = await rejection(c.getSecret('velero', 'cloud-credentials'), KubeError);
      expect(err.code).to.equal('Forbidden');
      expect(err.message).to.equal(
        'cannot read secrets "cloud-credentials" in namespace velero: 403 Forbidden: secrets "cloud-credentials" is forbidden: User "system:serviceaccount:velero:velero" ' +
          'cannot get resource "secrets" in API group "" in the namespace "velero"; grant get on secrets in namespace velero to the user named above (Velero\'s service account when the plugin runs in Velero)',
      );
      err = await rejection(c.listConfigMaps('velero', 'velero.io/plugin-config'), KubeError);
      expect(err.message).to.contain('grant list on configmaps in namespace velero');
    } finally {
      await denied.close();
    }
  });

  it('an unreachable API server is named with the socket error', async function () {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const server = `https://127.0.0.1:${port}`;
    const c = KubeClient.load({ kubeconfig: alteredKubeconfig(api, { server }), env: {} });
    const err = await rejection(c.getPod('monitoring', 'vm-0'), KubeError);
    expect(err.code).to.equal('Unreachable');
    expect(err.message).to.match(new RegExp(`^cannot read pods "vm-0" in namespace monitoring: cannot reach the Kubernetes API server at ${server}: connect ECONNREFUSED`));
    const execErr = await rejection(execInPod({ kubeConfig: c.kubeConfig, namespace: 'monitoring', pod: 'vm-0', container: 'victoria-companion', command: ['true'] }), ExecError);
    expect(execErr.code).to.equal('Unreachable');
    expect(execErr.message).to.match(new RegExp(`^cannot exec command \\["true"\\] in pod monitoring/vm-0 container victoria-companion: cannot reach the Kubernetes API server at ${server}: connect ECONNREFUSED`));
  });

  it('a call the API server never answers fails after the call deadline, naming the object and the server', async function () {
    const c = KubeClient.load({ kubeconfig: api.writeKubeconfig(), env: {}, callTimeoutMs: 400 });
    const resume = api.stall('secrets');
    try {
      const started = Date.now();
      const err = await rejection(c.getSecret('velero', 'cloud-credentials'), KubeError);
      expect(Date.now() - started).to.be.within(350, 5000);
      expect(err.code).to.equal('Timeout');
      expect(err.message).to.equal(
        `cannot read secrets "cloud-credentials" in namespace velero: the Kubernetes API server at ${api.url} did not answer within 0.4 s; check the API server's health (kubectl get --raw /readyz)`,
      );
    } finally {
      resume();
    }
    // The same client goes on working once the server answers again.
    expect((await c.getSecret('velero', 'cloud-credentials')).metadata?.name).to.equal('cloud-credentials');
  });

  it('creates and reads a velero Restore; deletes a namespace; writes nothing else', async function () {
    const created = await client.createRestore('velero', {
      apiVersion: 'velero.io/v1',
      kind: 'Restore',
      metadata: { generateName: 'drill-' },
      spec: { backupName: 'nightly-1', includedNamespaces: ['monitoring'], namespaceMapping: { monitoring: 'monitoring-drill' } },
    });
    const name = created.metadata.name!;
    expect(name).to.match(/^drill-[0-9a-f]{5}$/);
    expect((await client.getRestore('velero', name)).spec.namespaceMapping).to.deep.equal({ monitoring: 'monitoring-drill' });
    const dup = await rejection(client.createRestore('velero', { ...created, metadata: { name } }), KubeError);
    expect(dup.code).to.equal('AlreadyExists');
    expect(dup.message).to.contain(`409 AlreadyExists: restores.velero.io "${name}" already exists`);
    expect((await rejection(client.getRestore('velero', 'drill-00000'), KubeError)).code).to.equal('NotFound');

    api.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'monitoring-drill' } });
    api.put(makePod('monitoring-drill', 'vm-0', ['victoria-metrics']));
    await client.deleteNamespace('monitoring-drill');
    expect(api.get('v1', 'Namespace', undefined, 'monitoring-drill')).to.equal(undefined);
    expect(api.get('v1', 'Pod', 'monitoring-drill', 'vm-0')).to.equal(undefined);

    const writes = api.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path}`);
    expect(writes).to.deep.equal([
      'POST /apis/velero.io/v1/namespaces/velero/restores',
      'POST /apis/velero.io/v1/namespaces/velero/restores',
      'DELETE /api/v1/namespaces/monitoring-drill',
    ]);
    expect(api.requests.some((r) => r.path.includes('/secrets') && r.method !== 'GET')).to.equal(false);
  });
});

describe('kube: exec over WebSocket against the API stand-in', function () {
  let api: KubeApiServer;
  let client: KubeClient;
  const target = { namespace: 'monitoring', pod: 'vm-0', container: 'victoria-companion' };
  const exec = (o: Partial<ExecOptions> & { command: string[] }) => execInPod({ kubeConfig: client.kubeConfig, ...target, ...o });

  before(async function () {
    api = await startKubeApi();
    fixtures(api);
    api.onExec('monitoring', 'vm-0', 'victoria-companion', runLocally);
    client = KubeClient.load({ kubeconfig: api.writeKubeconfig(), env: {} });
  });
  after(async () => api?.close());
  afterEach(() => {
    api.protocols = [V5, V4];
    api.setExecFault(undefined);
  });

  for (const protocol of [V5, V4]) {
    describe(`with ${protocol === V5 ? 'v5 (stdin can be closed)' : 'a v4-only API server (stdin never closes)'}`, function () {
      beforeEach(() => {
        api.protocols = protocol === V5 ? [V5, V4] : [V4];
      });

      it('returns stdout and stderr of a command that exits 0', async function () {
        const r = await exec({ command: ['sh', '-c', 'printf out; printf err >&2'] });
        expect(r).to.include({ protocol, stdoutBytes: 3, stderr: 'err' });
        expect(r.stdout.toString()).to.equal('out');
        expect(api.execs.at(-1)).to.include({ protocol, exitCode: 0 });
        const q = api.requests.at(-1)!.query;
        expect(q.getAll('command')).to.deep.equal(['sh', '-c', 'printf out; printf err >&2']);
        expect(q.get('container')).to.equal('victoria-companion');
        expect(q.get('stdin')).to.equal(null);
      });

      it('delivers stdin', async function () {
        const line = `${JSON.stringify({ tree: '', files: ['a', 'b'] })}\n`;
        // On v4 stdin never reaches EOF, so the command reads what it needs, as `companion tar` does.
        const command = protocol === V5 ? ['cat'] : ['head', '-c', String(Buffer.byteLength(line))];
        const r = await exec({ command, stdin: line });
        expect(r.stdout.toString()).to.equal(line);
        expect(api.execs.at(-1)).to.include({ stdinBytes: Buffer.byteLength(line), stdinClosed: protocol === V5 });
      });

      it('fails on a non-zero exit with the exit code and the stderr tail', async function () {
        const err = await rejection(exec({ command: ['sh', '-c', 'echo "no snapshot recorded: run companion hook pre first" >&2; exit 3'] }), ExecError);
        expect(err.code).to.equal('NonZeroExit');
        expect(err.exitCode).to.equal(3);
        expect(err.stderr).to.equal('no snapshot recorded: run companion hook pre first');
        expect(err.message).to.equal(
          'command ["sh","-c","echo \\"no snapshot recorded: run companion hook pre first\\" >&2; exit 3"] in pod monitoring/vm-0 container victoria-companion exited with code 3: no snapshot recorded: run companion hook pre first',
        );
        // Exit 137, as the kernel's OOM killer leaves it in a container: the message says what it most likely was.
        const killed = await rejection(exec({ command: ['sh', '-c', 'kill -9 $$'] }), ExecError);
        expect(killed.exitCode).to.equal(137);
        expect(killed.message).to.match(/exited with code 137 \(killed by SIGKILL: most likely the container's memory limit was reached\): \(nothing on stderr\)$/);
      });
    });
  }

  it('stdin with backpressure: 8 MiB through `wc -c` (v5)', async function () {
    const r = await exec({ command: ['wc', '-c'], stdin: Buffer.alloc(8 * MiB, 7) });
    expect(r.stdout.toString().trim()).to.equal(String(8 * MiB));
    expect(api.execs.at(-1)).to.include({ stdinBytes: 8 * MiB, stdinClosed: true });
  });

  it('collected stdout past maxStdoutBytes fails, naming the command, the pod and the limit, and the caller\'s hint of what to do', async function () {
    const ok = await exec({ command: ['head', '-c', '1000', '/dev/zero'], maxStdoutBytes: 1000 });
    expect(ok.stdoutBytes).to.equal(1000);
    const err = await rejection(exec({ command: ['head', '-c', String(MiB), '/dev/zero'], maxStdoutBytes: 1000 }), ExecError);
    expect(err.code).to.equal('Failed');
    expect(err.message).to.equal(`command ["head","-c","${MiB}","/dev/zero"] in pod monitoring/vm-0 container victoria-companion wrote more than 1000 bytes to stdout`);
    const hinted = await rejection(exec({ command: ['head', '-c', '1001', '/dev/zero'], maxStdoutBytes: 1000, maxStdoutHint: 'print less' }), ExecError);
    expect(hinted.message).to.equal('command ["head","-c","1001","/dev/zero"] in pod monitoring/vm-0 container victoria-companion wrote more than 1000 bytes to stdout: print less');
  });

  it("stand-in: client-node's own Exec gets the same session (initial frame, output, Success status)", async function () {
    let out = '';
    const stdout = new Writable({
      write(chunk: Buffer, _enc, done) {
        out += chunk.toString();
        done();
      },
    });
    const status = await new Promise<V1Status>((resolve, reject) => {
      new Exec(client.kubeConfig).exec('monitoring', 'vm-0', 'victoria-companion', ['echo', 'hello'], stdout, null, null, false, resolve).catch(reject);
    });
    expect(status).to.deep.equal({ metadata: {}, status: 'Success' });
    expect(out).to.equal('hello\n');
  });

  it('refuses a pod that does not exist (404 before the upgrade)', async function () {
    const err = await rejection(exec({ pod: 'vm-9', command: ['true'] }), ExecError);
    expect(err.code).to.equal('NotFound');
    expect(err.message).to.equal(
      'cannot exec command ["true"] in pod monitoring/vm-9 container victoria-companion: 404 NotFound: pods "vm-9" not found; check that the pod exists (it may have been deleted or replaced)',
    );
  });

  it('refuses a container the pod does not have', async function () {
    const err = await rejection(exec({ pod: 'grafana-1', command: ['true'] }), ExecError);
    expect(err.code).to.equal('NoSuchContainer');
    expect(err.message).to.equal(
      'cannot exec command ["true"] in pod monitoring/grafana-1 container victoria-companion: 400 BadRequest: container victoria-companion is not valid for pod grafana-1; check the container name: the pod has no container "victoria-companion"',
    );
  });

  it('reports a missing executable with the runtime\'s message', async function () {
    api.onExec('monitoring', 'vl-7d9f-abcde', 'victoria-companion', () => undefined);
    const err = await rejection(exec({ pod: 'vl-7d9f-abcde', command: ['/plugins/velero-plugin-victoria', 'companion', 'files'] }), ExecError);
    expect(err.code).to.equal('Failed');
    expect(err.message).to.match(/failed: Internal error occurred: .*exec: "\/plugins\/velero-plugin-victoria": executable file not found in \$PATH/);
  });

  it('403 on pods/exec names the RBAC rule', async function () {
    const denied = await startKubeApi();
    try {
      fixtures(denied);
      denied.forbid('create', 'pods/exec', 'monitoring');
      const kubeConfig = loadKubeConfig({ kubeconfig: denied.writeKubeconfig(), env: {} });
      const err = await rejection(execInPod({ kubeConfig, ...target, command: ['true'] }), ExecError);
      expect(err.code).to.equal('Forbidden');
      expect(err.message).to.contain('cannot create resource "pods/exec" in API group "" in the namespace "monitoring"; grant create and get on pods/exec (API servers before 1.35 authorize the WebSocket exec as get) and get on pods in namespace monitoring');
    } finally {
      await denied.close();
    }
  });

  it('streams 64 MiB to a slow consumer with bounded buffering (backpressure both ends)', async function () {
    const size = 64 * MiB;
    let received = 0;
    let maxQueued = 0;
    const consumer = new Writable({
      highWaterMark: 256 * 1024,
      write(chunk: Buffer, _enc, done) {
        received += chunk.length;
        maxQueued = Math.max(maxQueued, this.writableLength);
        setTimeout(done, 2); // ~30 MiB/s at most: far slower than the pipe
      },
    });
    const before = process.memoryUsage();
    const peak = { rss: before.rss, arrayBuffers: before.arrayBuffers };
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peak.rss = Math.max(peak.rss, m.rss);
      peak.arrayBuffers = Math.max(peak.arrayBuffers, m.arrayBuffers);
    }, 20);
    const started = Date.now();
    try {
      const r = await exec({ command: ['head', '-c', String(size), '/dev/zero'], stdout: consumer, idleTimeoutMs: 10_000 });
      expect(r.stdoutBytes).to.equal(size);
    } finally {
      clearInterval(sampler);
    }
    expect(received).to.equal(size);
    expect(consumer.writableFinished).to.equal(true);
    const growth = { rss: (peak.rss - before.rss) / MiB, arrayBuffers: (peak.arrayBuffers - before.arrayBuffers) / MiB };
    console.log(`      64 MiB in ${((Date.now() - started) / 1000).toFixed(1)} s; RSS +${growth.rss.toFixed(1)} MiB, buffers +${growth.arrayBuffers.toFixed(1)} MiB, consumer queue ≤ ${(maxQueued / 1024).toFixed(0)} KiB`);
    // The consumer's queue is the exact measure of our buffering. The process-wide peaks also count
    // garbage not yet collected (about 32 MiB here; with a gc() before each sample, live buffers peak
    // under 3 MiB); without backpressure the whole 64 MiB would be held at once.
    expect(maxQueued).to.be.below(2 * MiB);
    expect(growth.arrayBuffers).to.be.below(48);
    expect(growth.rss).to.be.below(64);
  });

  it('a stream cut before the exit status fails clearly and destroys the consumer', async function () {
    api.setExecFault({ cutAfterStdoutBytes: MiB + 123 });
    let received = 0;
    let consumerError: Error | undefined;
    const consumer = new Writable({
      write(chunk: Buffer, _enc, done) {
        received += chunk.length;
        done();
      },
    });
    consumer.on('error', (e) => (consumerError = e));
    const err = await rejection(exec({ command: ['head', '-c', String(8 * MiB), '/dev/zero'], stdout: consumer }), ExecError);
    expect(err.code).to.equal('StreamCut');
    expect(err.message).to.match(/^exec stream to pod monitoring\/vm-0 container victoria-companion ended without an exit status \(command \["head","-c","8388608","\/dev\/zero"\]; \d+ bytes of stdout received; WebSocket close code 1006\)$/);
    expect(received).to.be.at.most(MiB + 123);
    expect(consumer.destroyed).to.equal(true);
    expect(consumerError).to.equal(err);
  });

  it('a hung exec fails after the idle timeout', async function () {
    api.setExecFault({ hang: true });
    const started = Date.now();
    const err = await rejection(exec({ command: ['true'], idleTimeoutMs: 400 }), ExecError);
    expect(err.code).to.equal('IdleTimeout');
    expect(err.message).to.equal('command ["true"] in pod monitoring/vm-0 container victoria-companion: nothing arrived for 0.4 s (idle timeout) after 0 bytes of stdout; the command or the connection to the API server is stuck');
    expect(Date.now() - started).to.be.within(350, 3000);
  });

  it('the whole-exec timeout and the AbortSignal end a running command', async function () {
    const timedOut = await rejection(exec({ command: ['sleep', '30'], timeoutMs: 300 }), ExecError);
    expect(timedOut.code).to.equal('Timeout');
    expect(timedOut.message).to.equal('command ["sleep","30"] in pod monitoring/vm-0 container victoria-companion did not finish within 0.3 s');

    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('backup cancelled')), 200);
    const aborted = await rejection(exec({ command: ['sleep', '30'], signal: ac.signal }), ExecError);
    expect(aborted.code).to.equal('Aborted');
    expect((aborted.cause as Error).message).to.equal('backup cancelled');
  });

  it('keepStdinOpen: stdin stays open after it was sent, also on v5, until the exec ends', async function () {
    const line = '{"cancelOnStdinEnd":true}\n';
    const r = await exec({ command: ['head', '-c', String(line.length)], stdin: line, keepStdinOpen: true });
    expect(r.stdout.toString()).to.equal(line);
    expect(api.execs.at(-1)).to.include({ protocol: V5, stdinBytes: line.length, stdinClosed: false, exitCode: 0 });
  });

  it('stand-in: as with the kubelet, a client that goes away signals nothing: the command runs on, and only its stdin is closed', async function () {
    const dir = mkdtempSync(join(tmpdir(), 'exec-gone-'));
    const marker = join(dir, 'stdin-ended');
    const cancelled = async (command: string[], stdin?: string) => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error('backup cancelled')), 300);
      const err = await rejection(exec({ command, signal: ac.signal, ...(stdin === undefined ? {} : { stdin, keepStdinOpen: true }) }), ExecError);
      expect(err.code).to.equal('Aborted');
      return api.execs.at(-1)!;
    };
    // Without stdin nothing reaches the command: it ends when it would have.
    const sleeping = await cancelled(['sleep', '2']);
    expect(sleeping.exitedAt, 'still running after the exec was cancelled').to.equal(undefined);
    expect(() => process.kill(sleeping.pid!, 0)).not.to.throw();
    // With stdin held open, its end is what the command sees.
    const reading = await cancelled(['sh', '-c', `cat >/dev/null; touch ${marker}`], '');
    for (const deadline = Date.now() + 5000; Date.now() < deadline && reading.exitedAt === undefined; ) await sleep(50);
    expect(reading).to.include({ exitCode: 0 });
    expect(existsSync(marker), 'the command read its stdin to the end').to.equal(true);
    for (const deadline = Date.now() + 5000; Date.now() < deadline && sleeping.exitedAt === undefined; ) await sleep(50);
    expect(sleeping).to.include({ exitCode: 0 });
    expect(sleeping.exitedAt! - sleeping.openedAt, 'sleep 2 ran its 2 s').to.be.at.least(1900);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('kube: the companion client\'s stdout limits, exec\'d through the API stand-in', function () {
  const NS = 'monitoring';
  const POD = 'vl-7d9f-abcde';
  const CONTAINER = 'victoria-companion';
  let api: KubeApiServer;
  let kube: KubeClient;
  let dir: string;
  /** What each companion command (`files`, `counts`, `hook pre`) prints: a local process in its stead. */
  let answers: Record<string, ExecTarget> = {};
  const zeros = (bytes: number): ExecTarget => ({ file: 'head', args: ['-c', String(bytes), '/dev/zero'] });
  const companion = (fileListLimitMiB = DEFAULT_CONFIG.fileListLimitMiB) =>
    new CompanionClient({ kube, namespace: NS, pod: POD, container: CONTAINER, execTimeoutMs: 60_000, streamIdleTimeoutMs: 60_000, countTimeoutMs: 60_000, fileListLimitMiB, signal: new AbortController().signal });
  const limitError = (args: string[], limit: number) =>
    `command ${JSON.stringify([EXECUTABLE, 'companion', ...args])} in pod ${NS}/${POD} container ${CONTAINER} wrote more than ${limit} bytes to stdout: `;

  before(async function () {
    api = await startKubeApi();
    fixtures(api);
    // Keyed by the command without its flags: `hook pre`, `counts` (--timeout 60s), `files`.
    api.onExec(NS, POD, CONTAINER, (command) => {
      const [file, role, ...args] = command;
      return file === EXECUTABLE && role === 'companion' ? answers[args.filter((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--')).join(' ')] : undefined;
    });
    kube = KubeClient.load({ kubeconfig: api.writeKubeconfig(), env: {} });
    dir = mkdtempSync(join(tmpdir(), 'companion-limits-'));
  });
  after(async () => {
    await api?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    answers = {};
  });

  it('hooks and counts print one JSON line: 1 MiB is taken, a byte more fails, naming the pod, the command and the limit, and what to check', async function () {
    const what = "it prints one JSON line of a few KiB, so this is not the companion's answer: check that the container runs the companion of this plugin version (velero/components/), and that nothing else in it writes to stdout";
    answers['hook pre'] = zeros(LINE_STDOUT_LIMIT);
    expect(await companion().hook('pre')).to.have.length(LINE_STDOUT_LIMIT);
    const calls: Array<[string, string[], () => Promise<unknown>]> = [
      ['hook pre', ['hook', 'pre'], () => companion().hook('pre')],
      ['hook post', ['hook', 'post'], () => companion().hook('post')],
      ['counts', ['counts', '--timeout', '60s'], () => companion().counts()],
    ];
    for (const [name, args, call] of calls) {
      answers[name] = zeros(LINE_STDOUT_LIMIT + 1);
      const err = await rejection(call(), ExecError);
      expect(err.message, name).to.equal(limitError(args, LINE_STDOUT_LIMIT) + what);
    }
  });

  it('files: a document well past the lines\' limit is read; one past fileListLimitMiB (64 by default) fails, naming the pod, the command, the limit and the key to raise', async function () {
    // 20,000 files of a VictoriaLogs partition: about 2 MiB, twice the hooks' limit.
    const doc: CompanionFiles = {
      format: COMPANION_FILES_FORMAT,
      kind: 'logs',
      url: 'http://127.0.0.1:9428',
      createdAt: '2026-01-02T03:04:05.000Z',
      snapshots: ['20260102030405-ABCDEF'],
      trees: [
        {
          prefix: 'partitions/20260101/',
          restoreTo: 'partitions/20260101',
          files: Array.from({ length: 20_000 }, (_, i) => ({ path: `datadb/${(0x1811a2b3c4d5e6f7n + BigInt(i >> 4)).toString(16).toUpperCase()}/values.bin${i % 16}`, size: 100_000 + i, mtimeMs: 1_767_225_600_000 })),
          snapshot: '20260102030405-ABCDEF',
        },
      ],
      dataDir: '/victoria-data',
    };
    const file = join(dir, 'files.json');
    writeFileSync(file, `${JSON.stringify(doc)}\n`);
    expect(readFileSync(file).length).to.be.above(LINE_STDOUT_LIMIT * 1.5);
    answers.files = { file: 'cat', args: [file] };
    expect(await companion().files()).to.deep.equal(doc);

    const what = (mib: number, files: string) =>
      `the list of the snapshots' files is larger than fileListLimitMiB of the plugin ConfigMap (${mib} MiB; at about 150 bytes a file, ${files} files or more): ` +
      'if the database has that many files (its /metrics counts its parts, of some 5 to 25 files each), raise fileListLimitMiB, ' +
      "and Velero's memory limit with it: reading the list takes about 3.4 times its size";
    // The same document under a limit of 1 MiB.
    const small = await rejection(companion(1).files(), ExecError);
    expect(small.message).to.equal(limitError(['files'], MiB) + what(1, '6,990'));

    answers.files = zeros(64 * MiB + 1);
    const err = await rejection(companion().files(), ExecError);
    expect(err.message).to.equal(limitError(['files'], 64 * MiB) + what(64, '447,392'));
  });
});
