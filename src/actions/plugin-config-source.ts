/** Reads the plugin ConfigMap (plugin-config.ts) from Velero's namespace; none means defaults. */
import type { KubeClient } from '../kube/client.js';
import { DEFAULT_CONFIG, parsePluginConfig, PLUGIN_CONFIG_SELECTOR, type PluginConfig } from './plugin-config.js';

export async function loadPluginConfig(kube: KubeClient, veleroNamespace: string): Promise<PluginConfig> {
  const maps = await kube.listConfigMaps(veleroNamespace, PLUGIN_CONFIG_SELECTOR);
  if (maps.length === 0) return { ...DEFAULT_CONFIG };
  if (maps.length > 1) {
    const names = maps.map((m) => m.metadata?.name).sort();
    throw new Error(`more than one plugin ConfigMap in namespace ${veleroNamespace} matches ${PLUGIN_CONFIG_SELECTOR} (${names.join(', ')}): keep one`);
  }
  const map = maps[0]!;
  return parsePluginConfig(map.data, `configmaps "${map.metadata?.name}" in namespace ${veleroNamespace}`);
}
