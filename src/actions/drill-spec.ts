/**
 * What a drill changes in a restored Victoria pod or a workload's pod template, as pure functions
 * of the JSON: the data volume (and every other hostPath a container writes to) moved to drill
 * paths, the database's retention raised and its network taken off the host's, and Velero's
 * post-restore hook that verifies the counts.
 */
import { parseRetention } from '../victoria/retention.js';
import { EXECUTABLE } from './names.js';
import { DRILL_PLACEHOLDERS, type PluginConfig } from './plugin-config.js';
import { withVolume, type Container, type PodSpec, type Pod, type Volume } from './pod-spec.js';

/** Velero's post-restore exec hook annotations (internal/hook/item_hook_handler.go). */
export const RESTORE_HOOK = {
  container: 'post.hook.restore.velero.io/container',
  command: 'post.hook.restore.velero.io/command',
  onError: 'post.hook.restore.velero.io/on-error',
  execTimeout: 'post.hook.restore.velero.io/exec-timeout',
  waitTimeout: 'post.hook.restore.velero.io/wait-timeout',
} as const;

/**
 * Where a drill puts the data: drillPathPattern with {path} (the production path), {restore} and
 * {namespace} (the drill namespace). Refuses anything that is, contains or lies inside the
 * production path: a drill never writes there, and a replacing restore into a parent directory
 * would move the production data aside.
 */
export function drillPath(pattern: string, values: Record<(typeof DRILL_PLACEHOLDERS)[number], string>): string {
  const production = values.path.replace(/\/+$/, '') || '/';
  const path = pattern.replace(/\{(path|restore|namespace)\}/g, (_, key: keyof typeof values) => (key === 'path' ? production : values[key]));
  const normalized = path.replace(/\/{2,}/g, '/').replace(/\/+$/, '');
  if (!normalized.startsWith('/') || normalized.split('/').some((s) => s === '..' || s === '.')) {
    throw new Error(`drillPathPattern ${JSON.stringify(pattern)} gives ${JSON.stringify(path)}, not a clean absolute path: fix drillPathPattern in the plugin ConfigMap`);
  }
  if (within(normalized, production) || within(production, normalized)) {
    throw new Error(
      `drillPathPattern ${JSON.stringify(pattern)} gives ${normalized} for production path ${production}: a drill must not write into, above or below the production data; ` +
        'use a pattern such as {path}-drill-{restore} in the plugin ConfigMap',
    );
  }
  return normalized;
}

/**
 * A drill's volume: the hostPath of `volume` (as it was in the backup, `original`) moved to
 * drillPath, created if missing (the drill directory does not exist yet, so a hostPath of type
 * Directory, File or unchecked would not start). Undefined for a volume that is not a hostPath.
 */
function drillVolume(volume: Volume, original: Volume, pattern: string, restore: string, namespace: string): { volume: Volume; production: string; path: string } | undefined {
  if (!original.hostPath) return undefined;
  const production = original.hostPath.path;
  const path = drillPath(pattern, { path: production, restore, namespace });
  const type = original.hostPath.type;
  const hostPath = { ...original.hostPath, path, type: type === undefined || type === '' || type === 'Directory' ? 'DirectoryOrCreate' : type === 'File' ? 'FileOrCreate' : type };
  return { volume: { ...volume, hostPath }, production, path };
}

/** Whether `a` is `b` or lies inside it ('/' holds every path). */
const within = (a: string, b: string): boolean => a === b || a.startsWith(b === '/' ? '/' : `${b}/`);

/** hostPath types that are no directory or file of data: left where they are in a drill. */
const NOT_DATA = new Set(['Socket', 'CharDevice', 'BlockDevice']);

/** The names of the volumes some container (or init container) of the pod mounts writable. */
function writableVolumes(pod: Pod): Set<string> {
  const containers = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  return new Set(containers.flatMap((c) => (c.volumeMounts ?? []).filter((m) => m.readOnly !== true).map((m) => m.name)));
}

/**
 * The pod's other hostPath volumes that a container mounts writable (a `-cacheDataPath`, a tmp
 * directory), moved to drill paths as the data volume is: a drill pod must not write into any
 * production path of the node, where the production database may be using the same directory.
 * Read-only mounts stay (they cannot change production: /etc/localtime, a configuration
 * directory), and so do sockets and devices. `original` is the pod as the backup holds it.
 */
function drillOtherHostPaths(
  pod: Pod,
  original: Pod,
  writable: Set<string>,
  dataVolume: string,
  pattern: string,
  values: { restore: string; namespace: string },
): { pod: Pod; moved: Array<{ name: string; production: string; path: string }> } {
  const moved: Array<{ name: string; production: string; path: string }> = [];
  let out = pod;
  for (const volume of original.spec?.volumes ?? []) {
    if (volume.name === dataVolume || !writable.has(volume.name) || NOT_DATA.has(volume.hostPath?.type ?? '')) continue;
    const current = (out.spec?.volumes ?? []).find((v) => v.name === volume.name);
    const drilled = current && drillVolume(current, volume, pattern, values.restore, values.namespace);
    if (!drilled) continue;
    out = withVolume(out, drilled.volume);
    moved.push({ name: volume.name, production: drilled.production, path: drilled.path });
  }
  return { pod: out, moved };
}

/**
 * Refuses drill paths that lie in, at or above a production hostPath the pod writes to: with the
 * data volume at /mnt/db1/vm and a cache volume at /mnt/db1/vm/cache, the pattern
 * {path}-drill-{restore} would put the cache's drill copy inside the production data directory.
 * (A read-only mount of a parent, such as / for disk metrics, is no production data.)
 */
function checkDrillPaths(moved: Array<{ production: string; path: string }>, original: Pod, writable: Set<string>, pattern: string): void {
  const production = (original.spec?.volumes ?? []).flatMap((v) => (v.hostPath && writable.has(v.name) ? [v.hostPath.path.replace(/\/+$/, '') || '/'] : []));
  for (const m of moved) {
    const clash = production.find((p) => within(m.path, p) || within(p, m.path));
    if (clash) {
      throw new Error(
        `drillPathPattern ${JSON.stringify(pattern)} gives ${m.path} for production path ${m.production}, which is in, at or above the pod's production hostPath ${clash}: ` +
          'a drill must not write there; use a pattern that leads elsewhere, such as /srv/drills/{restore}{path}, in the plugin ConfigMap',
      );
    }
  }
}

/** Whether a container is (one of) the database's: it mounts the data volume and is not the companion. */
function runsDatabase(c: Container, volumeName: string, companion: string): boolean {
  return c.name !== companion && (c.volumeMounts ?? []).some((m) => m.name === volumeName);
}

/** The image of the container that runs the database (the one besides the companion that mounts the data volume). */
export function databaseImage(spec: PodSpec, volumeName: string, companion: string): string | undefined {
  const image = (spec.containers ?? []).find((c) => runsDatabase(c, volumeName, companion))?.image;
  return typeof image === 'string' ? image : undefined;
}

/** A drill database's retention: 100 years, the longest VictoriaMetrics and VictoriaLogs accept. */
export const DRILL_RETENTION_ARG = '-retentionPeriod=100y';
const SHELLS = new Set(['sh', 'bash', 'ash', 'dash', 'busybox']);

/**
 * A drill's pod spec in which the database keeps every sample of the backup: the containers other
 * than the companion that mount the data volume get `-retentionPeriod=100y` as their last argument
 * (Go's flag package takes the last value; command-line flags also win over -envflag.enable).
 * With its production retention, a restored database would hide the samples that fell behind the
 * retention deadline since the backup and delete the partitions behind it, so a drill of any but
 * the newest backup would fail its count, and one of a monthly backup would come up empty.
 * `skipped` names containers run through a shell (`sh -c …`), where an appended argument would
 * not reach the database.
 */
export function withDrillRetention(spec: PodSpec, volumeName: string, companion: string): { spec: PodSpec; changed: string[]; skipped: string[] } {
  const changed: string[] = [];
  const skipped: string[] = [];
  const containers = (spec.containers ?? []).map((c) => {
    if (!runsDatabase(c, volumeName, companion)) return c;
    const command = Array.isArray(c.command) ? (c.command as string[]) : [];
    if (command.length > 0 && SHELLS.has(command[0]!.split('/').at(-1)!)) {
      skipped.push(c.name);
      return c;
    }
    const args = Array.isArray(c.args) ? (c.args as string[]) : [];
    changed.push(c.name);
    return args.at(-1) === DRILL_RETENTION_ARG ? c : { ...c, args: [...args, DRILL_RETENTION_ARG] };
  });
  return { spec: { ...spec, containers }, changed, skipped };
}

/** The defaults of `-retentionPeriod`: VictoriaMetrics 1 month (31 days), VictoriaLogs 7 days. */
const DEFAULT_RETENTION = { metrics: '1', logs: '7d' } as const;

/**
 * How long the restored database keeps data: the last `-retentionPeriod` among the command and args
 * of the first container (other than the companion) that mounts the data volume, else the
 * database's default. Undefined when no such container exists or the value is not one we read.
 */
export function databaseRetention(spec: PodSpec, volumeName: string, companion: string, kind: 'metrics' | 'logs'): { value: string; ms: number; isDefault: boolean } | undefined {
  const db = (spec.containers ?? []).find((c) => runsDatabase(c, volumeName, companion));
  if (!db) return undefined;
  const words = [...(Array.isArray(db.command) ? (db.command as string[]) : []), ...(Array.isArray(db.args) ? (db.args as string[]) : [])];
  let value: string | undefined;
  words.forEach((w, i) => {
    const m = /^--?retentionPeriod(?:=(.*))?$/.exec(w);
    if (m) value = m[1] ?? words[i + 1];
  });
  const isDefault = value === undefined;
  const text = value ?? DEFAULT_RETENTION[kind];
  const ms = parseRetention(text);
  return ms === undefined ? undefined : { value: text, ms, isDefault };
}

/**
 * A drill's pod spec without the node's network: no `hostNetwork`, no `hostPort`. A Victoria
 * workload on hostPath often runs with `hostNetwork: true` (velero/examples), which claims its
 * ports (8428, 9428) on the node; the drill's copy would then find them taken by production on a
 * single-node cluster (kind, k3s) and stay Pending until the drill timed out. Inside the pod the
 * database still answers on localhost, where the companion's verify hook asks it. `changed` is
 * false when the spec used neither.
 */
export function withDrillNetwork(spec: PodSpec): { spec: PodSpec; changed: boolean } {
  let changed = spec.hostNetwork === true;
  const withoutHostPorts = (containers: Container[] | undefined): Container[] | undefined =>
    containers?.map((c) => {
      if (!Array.isArray(c.ports) || !(c.ports as Array<Record<string, unknown>>).some((p) => p.hostPort !== undefined)) return c;
      changed = true;
      return { ...c, ports: (c.ports as Array<Record<string, unknown>>).map(({ hostPort: _dropped, ...rest }) => rest) };
    });
  const containers = withoutHostPorts(spec.containers);
  const initContainers = withoutHostPorts(spec.initContainers);
  if (!changed) return { spec, changed };
  const { hostNetwork: _hostNetwork, ...rest } = spec;
  return {
    spec: { ...rest, ...(containers ? { containers } : {}), ...(initContainers ? { initContainers } : {}) },
    changed,
  };
}

/** What withDrillNetwork did, for the drill's log line ('' when nothing). */
export function drillNetworkNote(r: { changed: boolean }): string {
  return r.changed ? '; it runs on the pod network (hostNetwork and hostPort removed), so that it can run beside production on the same node' : '';
}

/** What withDrillRetention did, for the drill's log line. */
export function drillRetentionNote(r: { changed: string[]; skipped: string[] }): string {
  const parts: string[] = [];
  if (r.changed.length > 0) parts.push(`container(s) ${r.changed.join(', ')} run with ${DRILL_RETENTION_ARG}, so the restored copy keeps every sample of the backup`);
  if (r.skipped.length > 0) parts.push(`container(s) ${r.skipped.join(', ')} start through a shell and keep their retention: add ${DRILL_RETENTION_ARG} to the drill's copy by hand, or its count may differ`);
  if (parts.length === 0) parts.push('no container besides the companion mounts the data volume, so no retention was raised');
  return parts.join('; ');
}

/**
 * A restored pod, or a workload's pod template, as a drill runs it: the data volume `volume` on
 * the drill path (`moved`; undefined when it is not a hostPath and stays as it is), the database
 * keeping every sample on the pod network. One function for both, so that a pod the drill's
 * controllers recreate from the template opens the same directory as the restored pod. The
 * production path comes from `backedUp`, the pod or template as the backup holds it, not from the
 * item Velero hands the action, which carries what the actions before it changed: so a run on its
 * own output gives the same drill path, not a drill path of the drill path. `note` is what the
 * retention and network changes did, for the drill's log line.
 */
export function drillPod(
  pod: Pod,
  backedUp: Pod,
  volume: Volume,
  config: Pick<PluginConfig, 'drillPathPattern' | 'companionContainer'>,
  o: { restore: string; namespace: string },
): { pod: Pod; moved: { production: string; path: string } | undefined; note: string } {
  const original = (backedUp.spec?.volumes ?? []).find((v) => v.name === volume.name) ?? volume;
  const moved = drillVolume(volume, original, config.drillPathPattern, o.restore, o.namespace);
  const writable = writableVolumes(backedUp);
  const others = drillOtherHostPaths(moved ? withVolume(pod, moved.volume) : pod, backedUp, writable, volume.name, config.drillPathPattern, o);
  checkDrillPaths([...(moved ? [moved] : []), ...others.moved], backedUp, writable, config.drillPathPattern);
  const moving = others.pod;
  const retention = withDrillRetention(moving.spec ?? {}, volume.name, config.companionContainer);
  const network = withDrillNetwork(retention.spec);
  const otherNote = others.moved.length > 0 ? `; hostPath volume(s) ${others.moved.map((m) => `${m.name} (${m.path}, not ${m.production})`).join(', ')} moved as well` : '';
  return { pod: { ...moving, spec: network.spec }, moved, note: `${drillRetentionNote(retention)}${drillNetworkNote(network)}${otherNote}` };
}

const LOOPBACK = /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;
/** Where a drill's verify hook asks when the companion's URL may lead elsewhere. */
export const DRILL_VERIFY_HOST = '127.0.0.1';

/**
 * Whether the drill's verify hook must be told to ask the loopback address (`companion verify
 * --host`): the companion's URL (`--url` in its command or args, else `VICTORIA_URL`, else the
 * loopback default) may name a Service or the node's address, which from a drill pod reaches the
 * production database, whose counts would pass the drill whatever was restored. Such a URL, or one
 * the spec does not show (taken from a Secret or ConfigMap), gets DRILL_VERIFY_HOST; `note` says
 * why, for the drill's log line. A loopback URL gets nothing, so that a companion of an older
 * version, which has no `--host`, still runs the hook.
 */
export function drillVerifyHost(pod: Pod, companion: string): { host: string; note: string } | undefined {
  const c = (pod.spec?.containers ?? []).find((x) => x.name === companion);
  if (!c) return undefined;
  const words = [...(Array.isArray(c.command) ? (c.command as string[]) : []), ...(Array.isArray(c.args) ? (c.args as string[]) : [])];
  let url: string | undefined;
  words.forEach((w, i) => {
    if (w === '--url') url = words[i + 1];
    else if (w.startsWith('--url=')) url = w.slice('--url='.length);
  });
  if (url === undefined) {
    const env = (Array.isArray(c.env) ? (c.env as Array<{ name?: string; value?: string; valueFrom?: unknown }>) : []).filter((e) => e.name === 'VICTORIA_URL').at(-1);
    if (env?.valueFrom !== undefined) {
      return { host: DRILL_VERIFY_HOST, note: `its companion's VICTORIA_URL comes from a Secret or ConfigMap, which the drill cannot see, so the verify hook asks ${DRILL_VERIFY_HOST} on its port` };
    }
    if (!env?.value) return undefined;
    url = env.value;
  }
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return undefined; // the companion refuses it itself, naming the flag
  }
  if (LOOPBACK.test(host)) return undefined;
  return {
    host: DRILL_VERIFY_HOST,
    note: `its companion's URL names ${host}, which from the drill pod may reach the production database, so the verify hook asks ${DRILL_VERIFY_HOST} on the same port`,
  };
}

/**
 * Velero's post-restore exec hook that checks a drill: in the companion, once the database
 * answers, its counts must equal the counts recorded at backup time (`companion verify`). Velero
 * waits for the companion container to run; the wait covers the init container's download.
 */
export function verifyHookAnnotations(o: {
  companion: string;
  counts: Record<string, number>;
  /** Data before this instant was counted at backup time; verify counts the same range. */
  countedBefore?: string;
  /** Data from this instant on was counted at backup time (absent: from the first sample). */
  countedFrom?: string;
  waitTimeoutSeconds: number;
  /** How long verify waits for the restored database to answer /health. */
  healthTimeoutSeconds: number;
  /** How long the count may take: the backup's countTimeoutSeconds. */
  countTimeoutSeconds: number;
  /** Ask the database at this host (drillVerifyHost). */
  host?: string;
}): Record<string, string> {
  // The wait for /health, then the count, with a minute for the flush and the start of the process.
  const execTimeoutSeconds = o.healthTimeoutSeconds + o.countTimeoutSeconds + 60;
  const command = [
    EXECUTABLE,
    'companion',
    'verify',
    '--expect',
    JSON.stringify(o.counts),
    ...(o.countedBefore ? ['--end', o.countedBefore] : []),
    ...(o.countedFrom ? ['--start', o.countedFrom] : []),
    '--timeout',
    `${o.healthTimeoutSeconds}s`,
    '--count-timeout',
    `${o.countTimeoutSeconds}s`,
    ...(o.host ? ['--host', o.host] : []),
  ];
  return {
    [RESTORE_HOOK.container]: o.companion,
    [RESTORE_HOOK.command]: JSON.stringify(command),
    [RESTORE_HOOK.onError]: 'Fail',
    [RESTORE_HOOK.execTimeout]: `${execTimeoutSeconds}s`,
    [RESTORE_HOOK.waitTimeout]: `${o.waitTimeoutSeconds}s`,
  };
}
