/**
 * The companion's configuration: each setting from its flag, else its environment variable, else
 * its default (docs/companion.md). In the sidecar everything comes from the pod spec's env; auth
 * keys from the user's Secret (`valueFrom.secretKeyRef`), so they stay out of `ps` and manifests.
 * An empty variable counts as unset: an optional secretKeyRef to a missing key yields none at all,
 * but a Secret holding an empty value yields "".
 */
import { parseFlags } from '../common/parse-flags.js';
import type { Dispatcher } from 'undici';
import { durationMs, GO_UNITS_MS } from '../victoria/durations.js';
import { openSource } from '../victoria/index.js';
import { isSourceKind, type SnapshotSource, type SourceKind } from '../victoria/types.js';
import { usageError } from './errors.js';

export interface CompanionConfig {
  kind: SourceKind;
  /** Base URL of the database; may carry basic-auth credentials (never printed). */
  url: string;
  /** The database's data directory as mounted in this container. */
  dataDir: string;
  /** `-snapshotAuthKey` (VictoriaMetrics) / `-partitionManageAuthKey` (VictoriaLogs). */
  authKey?: string;
  /** `-forceFlushAuthKey`. */
  forceFlushAuthKey?: string;
  /** Where the recorded snapshot set lives (state.ts). */
  stateDir: string;
  /** Recorded snapshots older than this are deleted by `serve` (ms); the default for other commands. */
  maxSnapshotAgeMs: number;
  /** How the user passes each key, for "pass its value with …" hints in auth errors. */
  authKeyOption: string;
  forceFlushAuthKeyOption: string;
}

export const DEFAULT_URLS: Record<SourceKind, string> = { metrics: 'http://127.0.0.1:8428', logs: 'http://127.0.0.1:9428' };
export const DEFAULT_DATA_DIR = '/victoria-data';
export const DEFAULT_STATE_DIR = '/var/run/velero-plugin-victoria';
export const DEFAULT_MAX_SNAPSHOT_AGE = '6h';

/** Flags of every command; `--max-snapshot-age` is added for `serve`. */
const FLAGS = {
  kind: { type: 'string' },
  url: { type: 'string' },
  'data-dir': { type: 'string' },
  'auth-key': { type: 'string' },
  'force-flush-auth-key': { type: 'string' },
  'state-dir': { type: 'string' },
} as const;

const SERVE_FLAGS = { ...FLAGS, 'max-snapshot-age': { type: 'string' } } as const;

/** The environment variable behind each flag. */
export const ENV = {
  kind: 'VICTORIA_KIND',
  url: 'VICTORIA_URL',
  'data-dir': 'VICTORIA_DATA_DIR',
  'auth-key': 'VICTORIA_AUTH_KEY',
  'force-flush-auth-key': 'VICTORIA_FORCE_FLUSH_AUTH_KEY',
  'state-dir': 'COMPANION_STATE_DIR',
  'max-snapshot-age': 'COMPANION_MAX_SNAPSHOT_AGE',
} as const;

type Flag = keyof typeof ENV;

/**
 * Parses the flags after the command words (`companion hook pre --kind …` → `['--kind', …]`).
 * Throws a usage error (exit 2) that names the flag and the variable.
 */
export function parseCompanionConfig(args: string[], env: NodeJS.ProcessEnv, options: { serve?: boolean } = {}): CompanionConfig {
  let values: Partial<Record<Flag, string>>;
  try {
    ({ values } = parseFlags({ args, options: options.serve ? SERVE_FLAGS : FLAGS, strict: true, allowPositionals: false }));
  } catch (err) {
    throw usageError((err as Error).message);
  }
  const fromFlag = (flag: Flag): boolean => values[flag] !== undefined;
  const get = (flag: Flag): string | undefined => {
    const v = values[flag] ?? env[ENV[flag]];
    return v === '' ? undefined : v;
  };
  const source = (flag: Flag): string => (fromFlag(flag) ? `--${flag}` : ENV[flag]);

  const kind = get('kind');
  if (kind === undefined) throw usageError(`--kind (or ${ENV.kind}) is required: metrics or logs`);
  if (!isSourceKind(kind)) throw usageError(`${source('kind')} is ${JSON.stringify(kind)}: it must be metrics or logs`);

  const url = get('url') ?? DEFAULT_URLS[kind];
  checkUrl(url, source('url'));
  const authKey = get('auth-key');
  const forceFlushAuthKey = get('force-flush-auth-key');
  // Only serve reads the age: a bad value must not break the hooks, which share the container's env.
  const maxAge = (options.serve ? get('max-snapshot-age') : undefined) ?? DEFAULT_MAX_SNAPSHOT_AGE;
  let maxSnapshotAgeMs: number;
  try {
    maxSnapshotAgeMs = parseDuration(maxAge);
  } catch (err) {
    throw usageError(`${source('max-snapshot-age')}: ${(err as Error).message}`);
  }
  return {
    kind,
    url,
    dataDir: get('data-dir') ?? DEFAULT_DATA_DIR,
    ...(authKey === undefined ? {} : { authKey }),
    ...(forceFlushAuthKey === undefined ? {} : { forceFlushAuthKey }),
    stateDir: get('state-dir') ?? DEFAULT_STATE_DIR,
    maxSnapshotAgeMs,
    authKeyOption: keyOption('auth-key', fromFlag('auth-key')),
    forceFlushAuthKeyOption: keyOption('force-flush-auth-key', fromFlag('force-flush-auth-key')),
  };
}

/** The sidecar gets keys from env; name that first unless the user chose the flag. */
function keyOption(flag: 'auth-key' | 'force-flush-auth-key', fromFlag: boolean): string {
  return fromFlag ? `--${flag}` : `${ENV[flag]} (the companion container's env, usually from a Secret) or --${flag}`;
}

/** The URL is parsed here so that a typo is a usage error, without echoing credentials it may hold. */
function checkUrl(url: string, from: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw usageError(`${from} is not a URL: it must look like http://127.0.0.1:8428`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw usageError(`${from} must be an http:// or https:// URL, got ${parsed.protocol}//…`);
}

/** Go-style durations as Kubernetes users write them: `6h`, `90m`, `1h30m`, `45s`; also `2d`. */
export function parseDuration(text: string): number {
  const ms = durationMs(text, GO_UNITS_MS);
  if (ms !== undefined) return ms;
  throw new Error(`${JSON.stringify(text)} is not a duration above zero such as 6h, 90m or 1h30m`);
}

/** `6h`, `1h30m`, `45s`: a duration for log lines. */
export function formatDuration(ms: number): string {
  // A configured 500ms must not be logged as 1s.
  if (ms < 60_000 && ms % 1000 !== 0) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${rest ? `${rest}s` : ''}`;
}

/** The configuration for log lines: no keys, no URL credentials. */
export function describeConfig(config: CompanionConfig): string {
  const url = new URL(config.url);
  url.username = '';
  url.password = '';
  return (
    `kind=${config.kind} url=${url.href.replace(/\/$/, '')} data-dir=${config.dataDir} state-dir=${config.stateDir} ` +
    `auth-key=${config.authKey ? 'set' : 'unset'} force-flush-auth-key=${config.forceFlushAuthKey ? 'set' : 'unset'}`
  );
}

/** The database client for this configuration. */
export function openConfiguredSource(config: CompanionConfig, dispatcher?: Dispatcher): SnapshotSource {
  return openSource(
    config.kind,
    {
      url: config.url,
      dataDir: config.dataDir,
      ...(config.authKey ? { authKey: config.authKey } : {}),
      ...(config.forceFlushAuthKey ? { forceFlushAuthKey: config.forceFlushAuthKey } : {}),
      authKeyOption: config.authKeyOption,
      forceFlushAuthKeyOption: config.forceFlushAuthKeyOption,
    },
    dispatcher,
  );
}
