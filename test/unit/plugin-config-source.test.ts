/** Finding the plugin ConfigMap by its labels, as Velero's own plugins find theirs. */
import { expect } from 'chai';
import { loadPluginConfig } from '../../src/actions/plugin-config-source.js';
import { DEFAULT_CONFIG } from '../../src/actions/plugin-config.js';
import type { KubeClient } from '../../src/kube/client.js';

const configMap = (name: string, labels: Record<string, string>, data: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: 'velero', labels: { 'velero.io/plugin-config': '', ...labels } },
  data,
});

const kubeWith = (maps: unknown[]): KubeClient => ({ listConfigMaps: async () => maps }) as unknown as KubeClient;

describe('plugin ConfigMap lookup', () => {
  it('finds it by either action label, with the kind as Velero spells it or as the V2 kind', async () => {
    const labelSets: Array<Record<string, string>> = [
      { 'velero-plugin-victoria.io/pod-backup': 'BackupItemAction' },
      { 'velero-plugin-victoria.io/pod-backup': 'BackupItemActionV2' },
      { 'velero-plugin-victoria.io/pod-restore': 'RestoreItemAction' },
      { 'velero-plugin-victoria.io/pod-restore': 'RestoreItemActionV2' },
    ];
    for (const labels of labelSets) {
      const config = await loadPluginConfig(kubeWith([configMap('mine', labels, { execTimeoutSeconds: '61' })]), 'velero');
      expect(config.execTimeoutMs, JSON.stringify(labels)).to.equal(61_000);
    }
  });

  it('says when the defaults apply, and warns of a ConfigMap with our keys but not our label', async () => {
    const notes: string[] = [];
    const note = (level: string, message: string) => notes.push(`${level}: ${message}`);
    expect(await loadPluginConfig(kubeWith([]), 'velero', note)).to.deep.equal(DEFAULT_CONFIG);
    expect(notes).to.deep.equal([
      'info: no plugin ConfigMap in namespace velero (labelled velero.io/plugin-config,velero-plugin-victoria.io/pod-backup=BackupItemAction or velero.io/plugin-config,velero-plugin-victoria.io/pod-restore=RestoreItemAction): the defaults apply',
    ]);
    notes.length = 0;
    const typo = configMap('victoria', { 'velero-plugin-victoria.io/backup': 'BackupItemAction' }, { restoreReplace: 'true' });
    expect(await loadPluginConfig(kubeWith([typo]), 'velero', note)).to.deep.equal(DEFAULT_CONFIG);
    expect(notes).to.deep.equal([
      'warn: configmaps "victoria" in namespace velero holds keys of this plugin\'s configuration but not its label (it has velero.io/plugin-config: , velero-plugin-victoria.io/backup: BackupItemAction): ' +
        'its settings do not apply; label it velero-plugin-victoria.io/pod-backup: BackupItemAction and velero-plugin-victoria.io/pod-restore: RestoreItemAction (velero/plugin-config.yaml)',
    ]);
  });

  it('ignores other plugins\' ConfigMaps, and refuses two of ours', async () => {
    const other = configMap('other', { 'velero.io/pod-volume-restore': 'RestoreItemAction' }, { execTimeoutSeconds: '61' });
    expect(await loadPluginConfig(kubeWith([other]), 'velero')).to.deep.equal(DEFAULT_CONFIG);
    const two = [configMap('a', { 'velero-plugin-victoria.io/pod-backup': 'BackupItemAction' }), configMap('b', { 'velero-plugin-victoria.io/pod-restore': 'RestoreItemActionV2' })];
    const err = (await loadPluginConfig(kubeWith(two), 'velero').catch((e: unknown) => e)) as Error;
    expect(err.message).to.match(/^more than one plugin ConfigMap in namespace velero matches .* \(a, b\): keep one, with both labels$/);
  });
});
