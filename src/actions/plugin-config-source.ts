/**
 * Reads the plugin ConfigMap (plugin-config.ts) from Velero's namespace; none means defaults.
 * One ConfigMap serves both actions: it is found by either action's label (Velero's convention,
 * `<plugin name>: <kind>`), so a ConfigMap made before the restore action existed, with only the
 * backup label, still applies to restores.
 */
import type { KubeClient } from '../kube/client.js';
import { BACKUP_ACTION, RESTORE_ACTION } from './names.js';
import { DEFAULT_CONFIG, parsePluginConfig, PLUGIN_CONFIG_KEYS, PLUGIN_CONFIG_SELECTOR, RESTORE_CONFIG_SELECTOR, type PluginConfig } from './plugin-config.js';

/**
 * `note` hears, when no ConfigMap is ours, that the defaults apply, or (a warning) which ConfigMap
 * looks meant to be ours but lacks our label: every setting in it would silently not apply.
 */
export async function loadPluginConfig(kube: KubeClient, veleroNamespace: string, note?: (level: 'info' | 'warn', message: string) => void): Promise<PluginConfig> {
  // The kind as Velero's own plugins label it (RestoreItemAction), or as the registered V2 kinds
  // are called: a ConfigMap labelled either way is ours, never silently ignored.
  const all = await kube.listConfigMaps(veleroNamespace, 'velero.io/plugin-config');
  const maps = all.filter((m) => {
    const labels = m.metadata?.labels ?? {};
    return /^BackupItemAction(V2)?$/.test(labels[BACKUP_ACTION] ?? '') || /^RestoreItemAction(V2)?$/.test(labels[RESTORE_ACTION] ?? '');
  });
  if (maps.length === 0) {
    // Most of its keys ours: another plugin's ConfigMap may share a word such as `streams`.
    const meant = all.filter((m) => {
      const keys = Object.keys(m.data ?? {});
      return keys.length > 0 && keys.filter((k) => PLUGIN_CONFIG_KEYS.includes(k)).length * 2 > keys.length;
    });
    for (const m of meant) {
      const labels = Object.entries(m.metadata?.labels ?? {}).map(([k, v]) => `${k}: ${v}`);
      note?.(
        'warn',
        `configmaps "${m.metadata?.name}" in namespace ${veleroNamespace} holds keys of this plugin's configuration but not its label (it has ${labels.join(', ')}): ` +
          `its settings do not apply; label it ${BACKUP_ACTION}: BackupItemAction and ${RESTORE_ACTION}: RestoreItemAction (velero/plugin-config.yaml)`,
      );
    }
    if (meant.length === 0) note?.('info', `no plugin ConfigMap in namespace ${veleroNamespace} (labelled ${PLUGIN_CONFIG_SELECTOR} or ${RESTORE_CONFIG_SELECTOR}): the defaults apply`);
    return { ...DEFAULT_CONFIG };
  }
  if (maps.length > 1) {
    const names = maps.map((m) => m.metadata?.name).sort();
    throw new Error(
      `more than one plugin ConfigMap in namespace ${veleroNamespace} matches ${PLUGIN_CONFIG_SELECTOR} or ${RESTORE_CONFIG_SELECTOR} (${names.join(', ')}): keep one, with both labels`,
    );
  }
  const map = maps[0]!;
  return parsePluginConfig(map.data, `configmaps "${map.metadata?.name}" in namespace ${veleroNamespace}`);
}
