/** What a pod needs to start, handed to Velero as additional items by the backup and, in a drill, the restore (pod-references.ts). */
import { expect } from 'chai';
import { podClaims, podReferences } from '../../src/actions/pod-references.js';
import type { Pod } from '../../src/actions/pod-spec.js';

describe('pod references', () => {
  it('names the Secrets and ConfigMaps of volumes, env, envFrom and image pulls, and a ServiceAccount of its own, once each', () => {
    const pod: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'vm-0', namespace: 'monitoring' },
      spec: {
        serviceAccountName: 'vmsingle',
        imagePullSecrets: [{ name: 'registry' }],
        initContainers: [{ name: 'init', envFrom: [{ configMapRef: { name: 'init-env' } }] }],
        containers: [
          { name: 'vm', env: [{ name: 'K', valueFrom: { secretKeyRef: { name: 'vm-keys', key: 'snapshot' } } }, { name: 'PLAIN', value: 'x' }] },
          { name: 'victoria-companion', env: [{ name: 'VICTORIA_AUTH_KEY', valueFrom: { secretKeyRef: { name: 'vm-keys', key: 'snapshot', optional: true } } }], envFrom: [{ secretRef: { name: 'companion-env' } }] },
        ],
        volumes: [
          { name: 'data', hostPath: { path: '/mnt/db1/victoriametrics', type: 'DirectoryOrCreate' } },
          { name: 'tls', secret: { secretName: 'vm-tls' } },
          { name: 'cfg', configMap: { name: 'vm-relabel' } },
          { name: 'kube-api-access-abcde', projected: { sources: [{ serviceAccountToken: { path: 'token' } }, { configMap: { name: 'kube-root-ca.crt' } }, { secret: { name: 'extra' } }] } },
        ],
      },
    };
    expect(podReferences(pod, 'monitoring')).to.deep.equal([
      { group: '', resource: 'secrets', namespace: 'monitoring', name: 'companion-env' },
      { group: '', resource: 'secrets', namespace: 'monitoring', name: 'extra' },
      { group: '', resource: 'secrets', namespace: 'monitoring', name: 'registry' },
      { group: '', resource: 'secrets', namespace: 'monitoring', name: 'vm-keys' },
      { group: '', resource: 'secrets', namespace: 'monitoring', name: 'vm-tls' },
      { group: '', resource: 'configmaps', namespace: 'monitoring', name: 'init-env' },
      { group: '', resource: 'configmaps', namespace: 'monitoring', name: 'vm-relabel' },
      { group: '', resource: 'serviceaccounts', namespace: 'monitoring', name: 'vmsingle' },
    ]);
  });

  it('required: leaves out what the pod may start without (optional: true), unless another reference requires it', () => {
    const pod: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      spec: {
        serviceAccountName: 'vmsingle',
        containers: [
          {
            name: 'victoria-companion',
            env: [
              { name: 'VICTORIA_AUTH_KEY', valueFrom: { secretKeyRef: { name: 'backup-auth', key: 'authKey', optional: true } } },
              { name: 'A', valueFrom: { configMapKeyRef: { name: 'maybe-env', key: 'a', optional: true } } },
              { name: 'B', valueFrom: { secretKeyRef: { name: 'shared', key: 'b', optional: true } } },
            ],
            envFrom: [{ secretRef: { name: 'maybe-all', optional: true } }, { configMapRef: { name: 'env' } }],
          },
          { name: 'vm', env: [{ name: 'C', valueFrom: { secretKeyRef: { name: 'shared', key: 'c' } } }] },
        ],
        volumes: [
          { name: 'tls', secret: { secretName: 'maybe-tls', optional: true } },
          { name: 'cfg', configMap: { name: 'maybe-cfg', optional: true } },
          { name: 'p', projected: { sources: [{ secret: { name: 'maybe-projected', optional: true } }, { configMap: { name: 'projected-cfg' } }] } },
        ],
      },
    };
    const ref = (resource: string, name: string) => ({ group: '', resource, namespace: 'monitoring', name });
    expect(podReferences(pod, 'monitoring', 'required')).to.deep.equal([ref('secrets', 'shared'), ref('configmaps', 'env'), ref('configmaps', 'projected-cfg'), ref('serviceaccounts', 'vmsingle')]);
    expect(podReferences(pod, 'monitoring').map((r) => r.name)).to.deep.equal(['backup-auth', 'maybe-all', 'maybe-projected', 'maybe-tls', 'shared', 'env', 'maybe-cfg', 'maybe-env', 'projected-cfg', 'vmsingle']);
  });

  it('names nothing Kubernetes makes in every namespace (the default ServiceAccount, kube-root-ca.crt)', () => {
    const pod: Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { serviceAccountName: 'default', containers: [{ name: 'c' }] } };
    expect(podReferences(pod, 'ns')).to.deep.equal([]);
  });

  it('podClaims names each PersistentVolumeClaim a pod mounts once; hostPath and other volumes are none', () => {
    const pod: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      spec: {
        volumes: [
          { name: 'data', hostPath: { path: '/mnt/db1/victoriametrics' } },
          { name: 'cache', persistentVolumeClaim: { claimName: 'vm-cache' } },
          { name: 'cache-again', persistentVolumeClaim: { claimName: 'vm-cache', readOnly: true } },
          { name: 'tmp', emptyDir: {} },
        ],
      },
    };
    expect(podClaims(pod)).to.deep.equal(['vm-cache']);
    expect(podClaims({ apiVersion: 'v1', kind: 'Pod', spec: {} })).to.deep.equal([]);
  });
});
