/**
 * The API stand-in's pod logs (GET pods/{name}/log), read through @kubernetes/client-node's own
 * CoreV1Api.readNamespacedPodLog as the plugin reads them: the container choice, tailLines and
 * limitBytes, and the API server's and kubelet's answers for a missing pod, a container the pod
 * does not have, one that never ran, an unscheduled pod, and RBAC without get on pods/log.
 */
import { expect } from 'chai';
import { ApiException, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { makePod, startKubeApi, type KubeApiServer } from '../support/kube-api.js';

const NS = 'monitoring';

/** The Status the API server answered, from client-node's ApiException (its body is the raw JSON). */
async function statusOf(p: Promise<unknown>): Promise<{ code: number; reason: string; message: string }> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(ApiException);
    const e = err as ApiException<string>;
    const status = JSON.parse(e.body) as { code: number; reason: string; message: string; kind: string };
    expect(status.kind).to.equal('Status');
    expect(status.code).to.equal(e.code);
    return status;
  }
  throw new Error('expected a rejection');
}

function coreFor(api: KubeApiServer): CoreV1Api {
  const kc = new KubeConfig();
  kc.loadFromFile(api.writeKubeconfig());
  return kc.makeApiClient(CoreV1Api);
}

describe('kube: pod logs from the API stand-in through client-node', function () {
  let api: KubeApiServer;
  let core: CoreV1Api;

  before(async function () {
    api = await startKubeApi();
    core = coreFor(api);
    const restored = makePod(NS, 'vm-0', ['victoria-metrics', 'victoria-companion'], { phase: 'Pending' });
    (restored.spec as { initContainers?: unknown[] }).initContainers = [{ name: 'victoria-restore', image: 'example/restore:1' }];
    api.put(restored);
    api.put(makePod(NS, 'single-0', ['app']));
    api.setLog(NS, 'vm-0', 'victoria-restore', '{"msg":"one"}\n{"msg":"two"}\n{"msg":"three"}\n');
    api.setLog(NS, 'single-0', 'app', 'first\nsecond\nlast line without a newline');
  });
  after(async () => api?.close());

  it('reads a container\'s log as text/plain, whole, with tailLines, and with limitBytes', async function () {
    const whole = '{"msg":"one"}\n{"msg":"two"}\n{"msg":"three"}\n';
    expect(await core.readNamespacedPodLog({ namespace: NS, name: 'vm-0', container: 'victoria-restore' })).to.equal(whole);
    expect(await core.readNamespacedPodLog({ namespace: NS, name: 'vm-0', container: 'victoria-restore', tailLines: 2 })).to.equal('{"msg":"two"}\n{"msg":"three"}\n');
    expect(await core.readNamespacedPodLog({ namespace: NS, name: 'vm-0', container: 'victoria-restore', tailLines: 0 })).to.equal('');
    expect(await core.readNamespacedPodLog({ namespace: NS, name: 'vm-0', container: 'victoria-restore', tailLines: 9 })).to.equal(whole);
    expect(await core.readNamespacedPodLog({ namespace: NS, name: 'vm-0', container: 'victoria-restore', tailLines: 1, limitBytes: 5 })).to.equal('{"msg');
    // A last line without its newline is a line.
    expect(await core.readNamespacedPodLog({ namespace: NS, name: 'single-0', tailLines: 1 })).to.equal('last line without a newline');
    expect(await core.readNamespacedPodLog({ namespace: NS, name: 'single-0', tailLines: 2 })).to.equal('second\nlast line without a newline');
    const last = api.requests.at(-1)!;
    expect(last.path).to.equal(`/api/v1/namespaces/${NS}/pods/single-0/log`);
    expect(last.query.get('tailLines')).to.equal('2');
    expect(last.status).to.equal(200);
  });

  it('a pod with one container needs no container name; with several it does, naming them all, init containers first', async function () {
    expect(await core.readNamespacedPodLog({ namespace: NS, name: 'single-0' })).to.match(/^first\n/);
    const status = await statusOf(core.readNamespacedPodLog({ namespace: NS, name: 'vm-0' }));
    expect(status).to.include({
      code: 400,
      reason: 'BadRequest',
      message: 'a container name must be specified for pod vm-0, choose one of: [victoria-restore victoria-metrics victoria-companion]',
    });
  });

  it('404 when the pod does not exist', async function () {
    const status = await statusOf(core.readNamespacedPodLog({ namespace: NS, name: 'vm-9', container: 'victoria-restore' }));
    expect(status).to.include({ code: 404, reason: 'NotFound', message: 'pods "vm-9" not found' });
  });

  it('400 for a container the pod does not have', async function () {
    const status = await statusOf(core.readNamespacedPodLog({ namespace: NS, name: 'vm-0', container: 'nope' }));
    expect(status).to.include({ code: 400, reason: 'BadRequest', message: 'container nope is not valid for pod vm-0' });
  });

  it('400 for a container that never ran: waiting to start, for the reason in the pod\'s status if it has one', async function () {
    let status = await statusOf(core.readNamespacedPodLog({ namespace: NS, name: 'vm-0', container: 'victoria-metrics' }));
    expect(status).to.include({ code: 400, reason: 'BadRequest', message: 'container "victoria-metrics" in pod "vm-0" is waiting to start: PodInitializing' });

    const pulling = makePod(NS, 'pulling-0', ['app']);
    pulling.status = { phase: 'Pending', containerStatuses: [{ name: 'app', state: { waiting: { reason: 'ImagePullBackOff' } } }] };
    api.put(pulling);
    status = await statusOf(core.readNamespacedPodLog({ namespace: NS, name: 'pulling-0' }));
    expect(status.message).to.equal('container "app" in pod "pulling-0" is waiting to start: trying and failing to pull image');
    // A container that ran and printed nothing has an empty log.
    pulling.status = { phase: 'Running', containerStatuses: [{ name: 'app', state: { running: { startedAt: '2026-11-22T09:30:00Z' } } }] };
    api.put(pulling);
    expect(await core.readNamespacedPodLog({ namespace: NS, name: 'pulling-0' })).to.equal('');
  });

  it('a pod put with a status is read back with it', async function () {
    const pod = makePod(NS, 'init-0', ['app']);
    pod.status = {
      phase: 'Pending',
      initContainerStatuses: [{ name: 'victoria-restore', ready: false, restartCount: 2, state: { terminated: { exitCode: 1, reason: 'Error' } } }],
    };
    api.put(pod);
    const read = await core.readNamespacedPod({ namespace: NS, name: 'init-0' });
    expect(read.status?.phase).to.equal('Pending');
    expect(read.status?.initContainerStatuses?.[0]).to.include({ name: 'victoria-restore', restartCount: 2 });
    expect(read.status?.initContainerStatuses?.[0]?.state?.terminated).to.include({ exitCode: 1, reason: 'Error' });
  });

  it('an unscheduled pod without a log: 204 without a Content-Type, which readNamespacedPodLog cannot parse', async function () {
    const pod = makePod(NS, 'pending-0', ['app'], { phase: 'Pending' });
    delete (pod.spec as { nodeName?: string }).nodeName;
    api.put(pod);
    let err: unknown;
    await core.readNamespacedPodLog({ namespace: NS, name: 'pending-0' }).catch((e: unknown) => (err = e));
    expect(String(err)).to.contain('No Content-Type');
    expect(api.requests.at(-1)!.status).to.equal(204);
  });

  it('422 for tailLines below 0 or limitBytes below 1, as the API server validates them', async function () {
    const status = await statusOf(core.readNamespacedPodLog({ namespace: NS, name: 'single-0', tailLines: -1, limitBytes: 0 }));
    expect(status).to.include({
      code: 422,
      reason: 'Invalid',
      message: 'PodLogOptions "single-0" is invalid: [tailLines: Invalid value: -1: must be greater than or equal to 0, limitBytes: Invalid value: 0: must be greater than 0]',
    });
  });

  it('403 without get on pods/log names the RBAC rule; allowed again, the log is read', async function () {
    const allow = api.forbid('get', 'pods/log', NS);
    try {
      const status = await statusOf(core.readNamespacedPodLog({ namespace: NS, name: 'vm-0', container: 'victoria-restore' }));
      expect(status).to.include({
        code: 403,
        reason: 'Forbidden',
        message: `pods "vm-0" is forbidden: User "${api.user}" cannot get resource "pods/log" in API group "" in the namespace "${NS}"`,
      });
      // Reading the pod itself is still allowed.
      expect((await core.readNamespacedPod({ namespace: NS, name: 'vm-0' })).metadata?.name).to.equal('vm-0');
    } finally {
      allow();
    }
    expect(await core.readNamespacedPodLog({ namespace: NS, name: 'vm-0', container: 'victoria-restore', tailLines: 1 })).to.equal('{"msg":"three"}\n');
  });
});
