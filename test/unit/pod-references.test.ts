/** What a drill's pod needs to start, handed to Velero as additional items (pod-references.ts). */
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
