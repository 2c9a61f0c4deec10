/**
 * The restore action's change to a restored Victoria pod, as pure functions of the pod JSON
 * (restore-pod.ts does the I/O): the `victoria-restore` init container on the data volume, and
 * the security context it runs with; and its removal from a pod that a later backup stores. A
 * drill's changes are in drill-spec.ts.
 */
import { PLAN_CA_ENV } from '../engine/plan.js';
import { formatOwner, type FileOwner } from '../engine/file-owner.js';
import { EXECUTABLE } from './names.js';
import { isRestoreContainer as ours, RESTORE_CONTAINER } from './restore-container.js';
import { DATA_MOUNT, type Container, type Pod, type VolumeMount } from './pod-spec.js';

/** Velero's file-system-restore init container (pod_volume_restore_action.go); ours goes after it. */
const RESTORE_WAIT = 'restore-wait';
const IDENTITY_FIELDS = ['runAsUser', 'runAsGroup', 'runAsNonRoot', 'seLinuxOptions'] as const;

/** The database container: the one that mounts the data volume read-write, else the first one other than the companion. */
function databaseContainer(pod: Pod, volumeName: string, companion: string): Container | undefined {
  const containers = (pod.spec?.containers ?? []).filter((c) => c.name !== companion);
  return containers.find((c) => (c.volumeMounts ?? []).some((m) => m.name === volumeName && !m.readOnly)) ?? containers[0];
}

/**
 * The user the database runs as when the pod names one other than root (runAsUser, of its
 * container or the pod), with the group when one is named: the owner the restored files get
 * (`restore --chown`). Undefined when the database runs as root or as its image's user.
 */
function databaseOwner(pod: Pod, volumeName: string, companion: string): FileOwner | undefined {
  const own = databaseContainer(pod, volumeName, companion)?.securityContext ?? {};
  const podLevel = pod.spec?.securityContext ?? {};
  const uid = own.runAsUser ?? podLevel.runAsUser;
  if (typeof uid !== 'number' || uid === 0) return undefined;
  const gid = own.runAsGroup ?? podLevel.runAsGroup;
  return typeof gid === 'number' ? { uid, gid } : { uid };
}

/**
 * The init container's securityContext when the ConfigMap sets none, and, decided with it, the
 * owner it gives the restored files (`--chown`). The restored files must belong to the user the
 * database runs as, in a directory that may be the kubelet's (root, 0755: a node that lost it,
 * every drill directory), so:
 * - a database that runs as a named non-root user (databaseOwner): the restore runs as root with
 *   CHOWN and DAC_OVERRIDE only, and gives it the files (`--chown`);
 * - a database that runs as root, or names no user (the VictoriaMetrics and VictoriaLogs images
 *   run as root): root with DAC_OVERRIDE, to write into a directory another user owns;
 * - `runAsNonRoot` without a user: the image's user, which only the image knows; the directory
 *   must be writable by it.
 * Everything else is locked down: no privilege escalation, the other capabilities dropped, a
 * read-only root filesystem.
 */
export function restoreIdentity(pod: Pod, volumeName: string, companion: string): { securityContext: Record<string, unknown>; chown?: FileOwner } {
  const own = databaseContainer(pod, volumeName, companion)?.securityContext ?? {};
  const podLevel = pod.spec?.securityContext ?? {};
  const out: Record<string, unknown> = {};
  const owner = databaseOwner(pod, volumeName, companion);
  let capabilities: string[] = [];
  if (owner) {
    out.runAsUser = 0;
    out.runAsGroup = 0;
    out.runAsNonRoot = false;
    if (own.seLinuxOptions !== undefined) out.seLinuxOptions = own.seLinuxOptions;
    capabilities = ['CHOWN', 'DAC_OVERRIDE'];
  } else {
    for (const field of IDENTITY_FIELDS) if (own[field] !== undefined) out[field] = own[field];
    const user = own.runAsUser ?? podLevel.runAsUser;
    const nonRoot = own.runAsNonRoot ?? podLevel.runAsNonRoot;
    if (user === 0) capabilities = ['DAC_OVERRIDE'];
    else if (user === undefined && nonRoot !== true) {
      out.runAsUser = 0;
      if (own.runAsGroup === undefined && podLevel.runAsGroup === undefined) out.runAsGroup = 0;
      out.runAsNonRoot = false;
      capabilities = ['DAC_OVERRIDE'];
    }
  }
  const locked = lockedDown(pod, { ...out, capabilities: capabilities.length ? { drop: ['ALL'], add: capabilities } : { drop: ['ALL'] } });
  if (own.seccompProfile !== undefined) locked.seccompProfile = own.seccompProfile;
  return owner ? { securityContext: locked, chown: owner } : { securityContext: locked };
}

/**
 * `context` over the init container's defaults: no privilege escalation, every capability
 * dropped, a read-only root filesystem and, unless the pod sets a profile its containers inherit,
 * the RuntimeDefault seccomp profile. Each field `context` sets wins (restoreSecurityContext is
 * the user's choice); the ones it leaves out stay locked down.
 */
export function lockedDown(pod: Pod, context: Record<string, unknown>): Record<string, unknown> {
  const seccomp = pod.spec?.securityContext?.seccompProfile === undefined ? { seccompProfile: { type: 'RuntimeDefault' } } : {};
  return { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true, ...seccomp, ...context };
}

export interface RestoreContainerOptions {
  image: string;
  imagePullPolicy?: string;
  planUrl: string;
  planSha256: string;
  replace: boolean;
  /** false: `--no-direct-io`, write through the page cache (restoreDirectIo). */
  directIo: boolean;
  /** `--max-bytes-per-second`: the downloads' cap (restoreMaxBytesPerSecond); 0 = no limit. */
  maxBytesPerSecond: number;
  /** The companion's mount of the data volume; ours is the same volume (and subPath), read-write. */
  dataMount: VolumeMount;
  /** Where the data lives below that mount (BackupRecord.dataSubdir). */
  dataSubdir?: string;
  resources: Record<string, unknown>;
  securityContext: Record<string, unknown>;
  /** `--chown`: the database's user, when the restore runs as root for it (databaseOwner). */
  chown?: FileOwner;
  /** The location's TLS settings: its CA certificate (public), or no verification. */
  tls?: { caCert?: string; insecureSkipTLSVerify?: boolean };
}

/**
 * The init container: the plan URL is its only link to the bucket; no credentials, no Secret (its
 * only possible env is the object store's CA certificate, which is public).
 */
export function restoreContainer(o: RestoreContainerOptions): Container {
  const mount: VolumeMount = { name: o.dataMount.name, mountPath: DATA_MOUNT };
  if (o.dataMount.subPath) mount.subPath = o.dataMount.subPath;
  if (o.dataMount.subPathExpr) mount.subPathExpr = o.dataMount.subPathExpr;
  return {
    name: RESTORE_CONTAINER,
    image: o.image,
    imagePullPolicy: o.imagePullPolicy ?? 'IfNotPresent',
    command: [
      EXECUTABLE,
      'restore',
      '--plan-url',
      o.planUrl,
      '--plan-sha256',
      o.planSha256,
      '--data-dir',
      o.dataSubdir ? `${DATA_MOUNT}/${o.dataSubdir}` : DATA_MOUNT,
      ...(o.replace ? ['--replace'] : []),
      ...(o.directIo ? [] : ['--no-direct-io']),
      ...(o.maxBytesPerSecond > 0 ? ['--max-bytes-per-second', String(o.maxBytesPerSecond)] : []),
      ...(o.chown ? ['--chown', formatOwner(o.chown)] : []),
      ...(o.tls?.insecureSkipTLSVerify ? ['--insecure-skip-tls-verify'] : []),
    ],
    ...(o.tls?.caCert ? { env: [{ name: PLAN_CA_ENV, value: o.tls.caCert }] } : {}),
    resources: o.resources,
    securityContext: o.securityContext,
    volumeMounts: [mount],
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

/**
 * The pod with `container` among its init containers: right after Velero's `restore-wait` (the
 * file-system restore of other volumes comes first), else first; an earlier `victoria-restore`
 * (the action ran twice) is replaced, never duplicated.
 */
export function withInitContainer(pod: Pod, container: Container): Pod {
  const others = (pod.spec?.initContainers ?? []).filter((c) => c.name !== container.name);
  const wait = others.findIndex((c) => c.name === RESTORE_WAIT);
  const initContainers = [...others.slice(0, wait + 1), container, ...others.slice(wait + 1)];
  return { ...pod, spec: { ...pod.spec, initContainers } };
}

/**
 * The pod as the backup action stores it, without the init container an earlier restore of ours
 * added (restoreContainer): its command holds a signed plan URL, which would otherwise be copied
 * into every later backup, and which is long expired when that backup is restored (the restore
 * action adds a fresh one; without the plugin, the pod would be stuck on it). Other init
 * containers stay.
 */
export function withoutRestoreContainer<T extends Pod>(pod: T): T {
  const { spec } = pod;
  if (!spec?.initContainers?.some(ours)) return pod;
  const { initContainers, ...rest } = spec;
  const others = initContainers.filter((c) => !ours(c));
  return { ...pod, spec: { ...rest, ...(others.length ? { initContainers: others } : {}) } };
}

