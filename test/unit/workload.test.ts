import { expect } from 'chai';
import { workloadOf } from '../../src/actions/workload.js';
import type { KubeClient } from '../../src/kube/client.js';
import { KubeError } from '../../src/kube/errors.js';
import type { KubeObject } from '../../src/velero/types.js';

/** A pod owned by ReplicaSet vm-store, and a KubeClient whose ReplicaSet read does `answer`. */
function setup(answer: () => Promise<unknown>) {
  const kube = { getReplicaSet: answer } as unknown as KubeClient;
  const pod: KubeObject = {
    kind: 'Pod',
    metadata: { namespace: 'monitoring', name: 'vm-store-x7k2p', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'vm-store', uid: 'u', controller: true }] },
  } as KubeObject;
  return { kube, pod };
}

describe('workloadOf: the folder of a pod owned by a ReplicaSet', () => {
  it('a bare ReplicaSet is its own workload; a Deployment\'s is the Deployment', async () => {
    const bare = setup(async () => ({ metadata: { name: 'vm-store' } }));
    expect(await workloadOf(bare.kube, bare.pod)).to.deep.equal({ id: 'ReplicaSet/vm-store', folder: 'vm-store' });
    const owned = setup(async () => ({ metadata: { name: 'vm-store', ownerReferences: [{ kind: 'Deployment', name: 'vm', controller: true }] } }));
    expect(await workloadOf(owned.kube, owned.pod)).to.deep.equal({ id: 'Deployment/vm', folder: 'vm' });
  });

  it('a ReplicaSet that is gone is guessed from its name; one the API server would not show fails the item', async () => {
    const gone = setup(async () => {
      throw new KubeError('NotFound', 'replicasets.apps "vm-store" not found', { status: 404 });
    });
    expect(await workloadOf(gone.kube, gone.pod)).to.deep.equal({ id: 'Deployment/vm', folder: 'vm' });
    const forbidden = setup(async () => {
      throw new KubeError('Forbidden', 'replicasets.apps "vm-store" is forbidden: User cannot get resource', { status: 403 });
    });
    const err = (await workloadOf(forbidden.kube, forbidden.pod).catch((e: Error) => e)) as Error;
    expect(err.message).to.equal(
      'cannot read ReplicaSet monitoring/vm-store, the owner of pod monitoring/vm-store-x7k2p, to find its workload: replicasets.apps "vm-store" is forbidden: User cannot get resource',
    );
  });
});

describe('workloadOf: a DaemonSet pod', () => {
  it("backs up into <daemonset>@<node>, which the DaemonSet's next pod on that node shares; one not yet scheduled keeps its own name", async () => {
    const kube = {} as KubeClient;
    const pod = (name: string, nodeName?: string): KubeObject =>
      ({
        kind: 'Pod',
        metadata: { namespace: 'logging', name, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'vlogs', uid: 'u', controller: true }] },
        spec: nodeName ? { nodeName } : {},
      }) as KubeObject;
    expect(await workloadOf(kube, pod('vlogs-x7k2p', 'ip-10-0-1-2.eu-west-1.compute.internal'))).to.deep.equal({
      id: 'DaemonSet/vlogs',
      folder: 'vlogs@ip-10-0-1-2.eu-west-1.compute.internal',
    });
    expect(await workloadOf(kube, pod('vlogs-q9w4t', 'ip-10-0-1-2.eu-west-1.compute.internal'))).to.deep.equal({
      id: 'DaemonSet/vlogs',
      folder: 'vlogs@ip-10-0-1-2.eu-west-1.compute.internal',
    });
    expect(await workloadOf(kube, pod('vlogs-m3n8c'))).to.deep.equal({ id: 'DaemonSet/vlogs', folder: 'vlogs-m3n8c' });
  });
});
