/**
 * Reads the plugin ConfigMap (plugin-config.ts) from Velero's namespace; none means defaults.
 * One ConfigMap serves both actions: it is found by either action's label (Velero's convention,
 * `<plugin name>: <kind>`), so a ConfigMap made before the restore action existed, with only the
 * backup label, still applies to restores.
 */
import type { KubeClient } from '../kube/client.js';
import { BACKUP_ACTION, RESTORE_ACTION } from './names.js';
import { DEFAULT_CONFIG, parsePluginConfig, PLUGIN_CONFIG_SELECTOR, RESTORE_CONFIG_SELECTOR, type PluginConfig } from './plugin-config.js';

export async function loadPluginConfig(kube: KubeClient, veleroNamespace: string): Promise<PluginConfig> {
  // The kind as Velero's own plugins label it (RestoreItemAction), or as the registered V2 kinds
  // are called: a ConfigMap labelled either way is ours, never silently ignored.
  const maps = (await kube.listConfigMaps(veleroNamespace, 'velero.io/plugin-config')).filter((m) => {
    const labels = m.metadata?.labels ?? {};
    return /^BackupItemAction(V2)?$/.test(labels[BACKUP_ACTION] ?? '') || /^RestoreItemAction(V2)?$/.test(labels[RESTORE_ACTION] ?? '');
  });
  if (maps.length === 0) return { ...DEFAULT_CONFIG };
  if (maps.length > 1) {
    const names = maps.map((m) => m.metadata?.name).sort();
    throw new Error(
      `more than one plugin ConfigMap in namespace ${veleroNamespace} matches ${PLUGIN_CONFIG_SELECTOR} or ${RESTORE_CONFIG_SELECTOR} (${names.join(', ')}): keep one, with both labels`,
    );
  }
  const map = maps[0]!;
  return parsePluginConfig(map.data, `configmaps "${map.metadata?.name}" in namespace ${veleroNamespace}`);
}
