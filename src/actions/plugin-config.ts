/**
 * The plugin's settings: a ConfigMap in Velero's namespace labelled `velero.io/plugin-config` and
 * `velero-plugin-victoria.io/pod-backup: BackupItemAction` (Velero's convention for plugin
 * configuration; velero/plugin-config.yaml documents every key). Missing keys take defaults; a
 * bad value is an error naming the ConfigMap and the key, because guessing would silently change
 * what a backup does.
 */
import { BACKUP_ACTION } from './names.js';

export const PLUGIN_CONFIG_SELECTOR = `velero.io/plugin-config,${BACKUP_ACTION}=BackupItemAction`;

export interface PluginConfig {
  companionContainer: string;
  execTimeoutMs: number;
  streamIdleTimeoutMs: number;
  itemTimeoutMs: number;
  uploadConcurrency: number;
  /** Parallel tar streams from the companion per backup. */
  streams: number;
  progressIntervalMs: number;
  runHooksIfMissing: boolean;
}

export const DEFAULT_CONFIG: PluginConfig = {
  companionContainer: 'victoria-companion',
  execTimeoutMs: 120_000,
  streamIdleTimeoutMs: 120_000,
  itemTimeoutMs: 4 * 3600_000,
  uploadConcurrency: 4,
  streams: 2,
  progressIntervalMs: 10_000,
  runHooksIfMissing: true,
};

type Parser = (value: string, config: PluginConfig) => string | undefined;

const seconds =
  (key: keyof PluginConfig, min: number, max: number): Parser =>
  (value, config) => {
    const n = Number(value);
    if (!/^\d+(\.\d+)?$/.test(value.trim()) || n < min || n > max) return `a number of seconds from ${min} to ${max}`;
    (config[key] as number) = n * 1000;
    return undefined;
  };

const count =
  (key: keyof PluginConfig, min: number, max: number): Parser =>
  (value, config) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n < min || n > max) return `a whole number from ${min} to ${max}`;
    (config[key] as number) = n;
    return undefined;
  };

const KEYS: Record<string, Parser> = {
  companionContainer: (value, config) => {
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(value.trim())) return 'a container name (lower-case DNS label)';
    config.companionContainer = value.trim();
    return undefined;
  },
  execTimeoutSeconds: seconds('execTimeoutMs', 1, 86_400),
  streamIdleTimeoutSeconds: seconds('streamIdleTimeoutMs', 1, 86_400),
  itemTimeoutSeconds: seconds('itemTimeoutMs', 10, 7 * 86_400),
  uploadConcurrency: count('uploadConcurrency', 1, 64),
  streams: count('streams', 1, 16),
  progressIntervalSeconds: seconds('progressIntervalMs', 1, 3600),
  runHooksIfMissing: (value, config) => {
    const v = value.trim().toLowerCase();
    if (v !== 'true' && v !== 'false') return 'true or false';
    config.runHooksIfMissing = v === 'true';
    return undefined;
  },
};

export const CONFIG_KEYS = Object.keys(KEYS);

/** Parses the ConfigMap's data; `where` names it in errors (`configmaps "x" in namespace velero`). */
export function parsePluginConfig(data: Readonly<Record<string, string>> | undefined, where: string): PluginConfig {
  const config = { ...DEFAULT_CONFIG };
  for (const [key, value] of Object.entries(data ?? {})) {
    const parse = KEYS[key];
    if (!parse) throw new Error(`${where}: unknown key ${JSON.stringify(key)}; the keys are ${CONFIG_KEYS.join(', ')}`);
    const problem = parse(value, config);
    if (problem) throw new Error(`${where}: ${key} is ${JSON.stringify(value)}, it must be ${problem}`);
  }
  return config;
}
