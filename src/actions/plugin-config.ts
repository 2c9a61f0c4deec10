/**
 * The plugin's settings: one ConfigMap in Velero's namespace labelled `velero.io/plugin-config`
 * and, per action, `velero-plugin-victoria.io/pod-backup: BackupItemAction` and
 * `velero-plugin-victoria.io/pod-restore: RestoreItemAction` (Velero's convention for plugin
 * configuration; velero/plugin-config.yaml documents every key). Missing keys take defaults; a
 * bad value is an error naming the ConfigMap and the key, because guessing would silently change
 * what a backup or a restore does.
 */
import { MAX_PLAN_EXPIRY_SECONDS } from '../engine/plan.js';
import { parseBytesPerSecond } from '../engine/rate-limit.js';
import { BACKUP_ACTION, RESTORE_ACTION } from './names.js';

export const PLUGIN_CONFIG_SELECTOR = `velero.io/plugin-config,${BACKUP_ACTION}=BackupItemAction`;
export const RESTORE_CONFIG_SELECTOR = `velero.io/plugin-config,${RESTORE_ACTION}=RestoreItemAction`;

export interface PluginConfig {
  companionContainer: string;
  execTimeoutMs: number;
  streamIdleTimeoutMs: number;
  itemTimeoutMs: number;
  /** Count the data for drill verification (`companion counts`, during the upload). */
  counts: boolean;
  /** How long the database may take to count its data. */
  countTimeoutMs: number;
  uploadConcurrency: number;
  /** Pods one plugin process backs up at once when Velero's item-block workers send several (the rest wait). */
  maxParallelPodBackups: number;
  /** The most bytes per second one pod's backup uploads (server-side copies aside); 0 = no limit. */
  maxBytesPerSecond: number;
  /** Parallel tar streams from the companion per backup. */
  streams: number;
  /** The most bytes of `companion files` output read (the list of the snapshots' files), in MiB. */
  fileListLimitMiB: number;
  progressIntervalMs: number;
  runHooksIfMissing: boolean;
  /** Image of the restore init container; '' = the plugin's image in Velero's own pod, else in its Deployment `velero` (plugin-image.ts). */
  restoreImage: string;
  /** Validity of the restore plan's presigned URLs (seconds). */
  restorePlanExpirySeconds: number;
  /** Restore into a non-empty data directory, moving its contents aside (`restore --replace`). */
  restoreReplace: boolean;
  /** Write restored files with O_DIRECT where the file system takes it (false: `restore --no-direct-io`). */
  restoreDirectIo: boolean;
  /** The most bytes per second one init container downloads; 0 = no limit. */
  restoreMaxBytesPerSecond: number;
  /** The init container's resources (a Kubernetes ResourceRequirements). */
  restoreResources: Record<string, unknown>;
  /** The init container's securityContext; null = derived from the database container (restore-spec.ts restoreIdentity). */
  restoreSecurityContext: Record<string, unknown> | null;
  /** Where a drill puts the data instead of the production hostPath: {path}, {restore}, {namespace}. */
  drillPathPattern: string;
}

export const DEFAULT_CONFIG: PluginConfig = {
  companionContainer: 'victoria-companion',
  execTimeoutMs: 120_000,
  streamIdleTimeoutMs: 120_000,
  itemTimeoutMs: 24 * 3600_000,
  counts: true,
  countTimeoutMs: 1800_000,
  uploadConcurrency: 4,
  maxParallelPodBackups: 1,
  maxBytesPerSecond: 0,
  streams: 2,
  fileListLimitMiB: 64,
  progressIntervalMs: 10_000,
  runHooksIfMissing: true,
  restoreImage: '',
  restorePlanExpirySeconds: 14_400,
  restoreReplace: false,
  restoreDirectIo: true,
  restoreMaxBytesPerSecond: 0,
  restoreResources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '1Gi' } },
  restoreSecurityContext: null,
  drillPathPattern: '{path}-drill-{restore}',
};

/** The placeholders of drillPathPattern. */
export const DRILL_PLACEHOLDERS = ['path', 'restore', 'namespace'] as const;

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

const flag =
  (key: keyof PluginConfig): Parser =>
  (value, config) => {
    const v = value.trim().toLowerCase();
    if (v !== 'true' && v !== 'false') return 'true or false';
    (config[key] as boolean) = v === 'true';
    return undefined;
  };

const rate =
  (key: keyof PluginConfig): Parser =>
  (value, config) => {
    const n = parseBytesPerSecond(value);
    if (typeof n === 'string') return n;
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
  counts: flag('counts'),
  countTimeoutSeconds: seconds('countTimeoutMs', 1, 86_400),
  uploadConcurrency: count('uploadConcurrency', 1, 64),
  maxParallelPodBackups: count('maxParallelPodBackups', 1, 16),
  maxBytesPerSecond: rate('maxBytesPerSecond'),
  streams: count('streams', 1, 16),
  fileListLimitMiB: count('fileListLimitMiB', 1, 1024),
  progressIntervalSeconds: seconds('progressIntervalMs', 1, 3600),
  runHooksIfMissing: flag('runHooksIfMissing'),
  restoreImage: (value, config) => {
    const v = value.trim();
    // A reference such as registry.example.com:5000/velero-plugin-victoria:v1.2.3 or …@sha256:<hex>.
    if (v !== '' && !/^[a-z0-9]([a-z0-9._:/-]*[a-z0-9])?(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$/i.test(v)) {
      return 'an image reference such as registry.example.com/velero-plugin-victoria:v0.1.0, or "" for the image Velero runs the plugin from';
    }
    config.restoreImage = v;
    return undefined;
  },
  restorePlanExpirySeconds: count('restorePlanExpirySeconds', 300, MAX_PLAN_EXPIRY_SECONDS),
  restoreReplace: flag('restoreReplace'),
  restoreDirectIo: flag('restoreDirectIo'),
  restoreMaxBytesPerSecond: rate('restoreMaxBytesPerSecond'),
  restoreResources: (value, config) => {
    const parsed = jsonObject(value);
    if (typeof parsed === 'string') return `a JSON ResourceRequirements object such as {"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"memory":"1Gi"}} (${parsed})`;
    for (const [k, v] of Object.entries(parsed)) {
      if (k !== 'requests' && k !== 'limits') return `a JSON ResourceRequirements object with "requests" and/or "limits" (not ${JSON.stringify(k)})`;
      if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.values(v).every((q) => typeof q === 'string' || typeof q === 'number')) {
        return `a JSON ResourceRequirements object whose "${k}" maps resource names to quantities such as "500m" or "1Gi"`;
      }
      // Checked here, or the API server refuses the restored pod, naming neither this ConfigMap nor the key.
      for (const [name, quantity] of Object.entries(v as Record<string, string | number>)) {
        if (!RESOURCE_NAME.test(name)) return `a JSON ResourceRequirements object; "${k}.${name}" is not a resource (cpu, memory, ephemeral-storage, hugepages-<size> or <domain>/<name>)`;
        if (!QUANTITY.test(String(quantity))) return `a JSON ResourceRequirements object; "${k}.${name}" is ${JSON.stringify(quantity)}, not a quantity such as "500m", "128Mi" or "1Gi"`;
      }
    }
    config.restoreResources = parsed;
    return undefined;
  },
  restoreSecurityContext: (value, config) => {
    if (value.trim() === '') {
      config.restoreSecurityContext = null;
      return undefined;
    }
    const parsed = jsonObject(value);
    if (typeof parsed === 'string') return `"" or a JSON SecurityContext object such as {"runAsUser":1000,"runAsGroup":1000} (${parsed})`;
    const unknown = Object.keys(parsed).filter((k) => !SECURITY_CONTEXT_FIELDS.has(k));
    if (unknown.length > 0) return `"" or a JSON SecurityContext object; ${unknown.map((k) => JSON.stringify(k)).join(', ')} is not a field of a container's securityContext`;
    for (const [field, v] of Object.entries(parsed)) {
      if (v === null) continue; // as the API server takes it: not set
      const type = SECURITY_CONTEXT_FIELDS.get(field)!;
      const ok = type === 'id' ? Number.isSafeInteger(v) && (v as number) >= 0 : type === 'object' ? typeof v === 'object' && v !== null && !Array.isArray(v) : typeof v === type;
      if (!ok) return `"" or a JSON SecurityContext object; "${field}" is ${JSON.stringify(v)}, it must be ${type === 'id' ? 'a whole number from 0 (unquoted)' : type === 'object' ? 'an object' : `a ${type}`}`;
    }
    config.restoreSecurityContext = parsed;
    return undefined;
  },
  drillPathPattern: (value, config) => {
    const v = value.trim();
    const placeholders = [...v.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]!);
    const unknown = placeholders.filter((p) => !(DRILL_PLACEHOLDERS as readonly string[]).includes(p));
    if (unknown.length > 0) return `a path pattern with the placeholders {path}, {restore} and {namespace} only (not {${unknown[0]}})`;
    if (!placeholders.includes('restore') && !placeholders.includes('namespace')) {
      return 'a path pattern containing {restore} or {namespace}, so that a drill never writes into the production path (default {path}-drill-{restore})';
    }
    if (!placeholders.includes('path')) {
      return 'a path pattern containing {path}, so that each data volume of a drill gets a directory of its own (without it every pod of the drill restores into the same one), e.g. /srv/drills/{restore}{path}';
    }
    if (!v.startsWith('{path}') && !v.startsWith('/')) return 'an absolute path pattern: starting with / or {path}';
    config.drillPathPattern = v;
    return undefined;
  },
};

/** The keys a plugin ConfigMap may hold. */
export const PLUGIN_CONFIG_KEYS: readonly string[] = Object.keys(KEYS);

/** The fields of a Kubernetes container SecurityContext (core/v1), and what each holds (`id`: a user or group id). */
const SECURITY_CONTEXT_FIELDS = new Map<string, 'boolean' | 'string' | 'object' | 'id'>([
  ['allowPrivilegeEscalation', 'boolean'],
  ['appArmorProfile', 'object'],
  ['capabilities', 'object'],
  ['privileged', 'boolean'],
  ['procMount', 'string'],
  ['readOnlyRootFilesystem', 'boolean'],
  ['runAsGroup', 'id'],
  ['runAsNonRoot', 'boolean'],
  ['runAsUser', 'id'],
  ['seLinuxOptions', 'object'],
  ['seccompProfile', 'object'],
  ['windowsOptions', 'object'],
]);

/** Resource names a container may request: the standard ones and hugepages, or an extended resource (`example.com/gpu`). */
const RESOURCE_NAME = /^(cpu|memory|ephemeral-storage|hugepages-[0-9A-Za-z]+|[a-z0-9]([-a-z0-9.]*[a-z0-9])?\/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
/** A Kubernetes quantity, as resource.Quantity parses it (without a sign: resources are not negative). */
const QUANTITY = /^([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$/;

/** A JSON object, or why the text is not one. */
function jsonObject(text: string): Record<string, unknown> | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return `not JSON: ${(err as Error).message}`;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return 'not a JSON object';
  return parsed as Record<string, unknown>;
}

/** Parses the ConfigMap's data; `where` names it in errors (`configmaps "x" in namespace velero`). */
export function parsePluginConfig(data: Readonly<Record<string, string>> | undefined, where: string): PluginConfig {
  const config = { ...DEFAULT_CONFIG };
  for (const [key, value] of Object.entries(data ?? {})) {
    const parse = KEYS[key];
    if (!parse) throw new Error(`${where}: unknown key ${JSON.stringify(key)}; the keys are ${PLUGIN_CONFIG_KEYS.join(', ')}`);
    const problem = parse(value, config);
    if (problem) throw new Error(`${where}: ${key} is ${JSON.stringify(value)}, it must be ${problem}`);
  }
  return config;
}
