import { expect } from 'chai';
import { podExclusion } from '../../src/actions/backup-filters.js';

describe('backup filters: pods a Backup leaves out on purpose', () => {
  const labels = { app: 'vmsingle', 'velero-plugin-victoria.io/kind': 'metrics' };

  it('includes a pod when nothing filters it, or when the filters name pods in any of the forms Velero resolves', () => {
    expect(podExclusion({}, labels)).to.equal(undefined);
    for (const name of ['pods', 'pod', 'po', 'Pods', 'pods.', '*']) {
      expect(podExclusion({ includedResources: [name, 'deployments'] }, labels), name).to.equal(undefined);
    }
    expect(podExclusion({ includedResources: [], excludedResources: ['configmaps'] }, labels)).to.equal(undefined);
    expect(podExclusion({ labelSelector: { matchLabels: { app: 'vmsingle' } } }, labels)).to.equal(undefined);
    expect(podExclusion({ orLabelSelectors: [{ matchLabels: { app: 'other' } }, { matchExpressions: [{ key: 'app', operator: 'In', values: ['vmsingle'] }] }] }, labels)).to.equal(undefined);
    expect(podExclusion({ labelSelector: { matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }, { key: 'app', operator: 'NotIn', values: ['x'] }] } }, labels)).to.equal(undefined);
  });

  it('names the filter that leaves a pod out and what to change', () => {
    expect(podExclusion({}, { ...labels, 'velero.io/exclude-from-backup': 'true' })).to.equal('it is labelled velero.io/exclude-from-backup=true (remove the label to capture its data)');
    expect(podExclusion({ excludedResources: ['pods'] }, labels)).to.equal('the backup excludes pods (--include-resources / --exclude-resources; take pods out of the exclusions to capture its data)');
    expect(podExclusion({ includedResources: ['deployments', 'configmaps'] }, labels)).to.equal('the backup does not include pods (--include-resources / --exclude-resources; add pods to capture its data)');
    expect(podExclusion({ includedNamespaceScopedResources: ['*'], excludedNamespaceScopedResources: ['po'] }, labels)).to.match(/^the backup excludes pods \(--include-namespace-scoped-resources/);
    expect(podExclusion({ labelSelector: { matchLabels: { tier: 'db' } } }, labels)).to.match(/^its labels match none of the backup's label selectors/);
    expect(podExclusion({ labelSelector: { matchExpressions: [{ key: 'tier', operator: 'Exists' }] } }, labels)).to.match(/^its labels match none/);
  });
});
