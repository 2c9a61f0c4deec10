/**
 * Where a pod's data goes in the bucket, and the record of it on the pod item
 * (docs/velero-backup.md, "What lands in the bucket"):
 * `<bsl prefix>/plugins/victoria/<namespace>/<workload>/<backup>/`. One folder per
 * workload, so "the newest complete backup of this workload" is one listing; the restore and
 * delete actions find the data through the record, which names no credentials and no URLs.
 */
import { posix } from 'node:path';
import { isSourceKind } from '../victoria/types.js';
import { PLUGIN_DOMAIN } from './names.js';

export const RECORD_ANNOTATION = `${PLUGIN_DOMAIN}/backup`;
export const PLUGIN_FOLDER = 'plugins/victoria';
/** The record's format: a later version that changes the record gives it a new one. */
export const RECORD_FORMAT = 'velero-plugin-victoria/record/v1';

export interface BackupRecord {
  format: typeof RECORD_FORMAT;
  /** The BackupStorageLocation the data went to. */
  storageLocation: string;
  bucket: string;
  /** Key prefix of the workload folder, from the bucket root: `<bsl prefix>/plugins/victoria/<ns>/<workload>`. */
  prefix: string;
  /** The backup's folder inside the workload folder (the Velero backup name). */
  name: string;
  kind: 'metrics' | 'logs';
  /** `Deployment/<name>`, `ReplicaSet/<name>` (a bare ReplicaSet), `StatefulSet/<name>`, `DaemonSet/<name>` or `Pod/<name>`. */
  workload: string;
  files: number;
  bytes: number;
  /**
   * Where the database's data lives below the data volume's mount (`vm` for a companion whose
   * --data-dir is /victoria-data/vm): the restore writes there. Absent when it is the mount itself.
   */
  dataSubdir?: string;
}

/**
 * The workload folder under the BSL prefix (`folder`, from workload.ts): the Deployment's name for
 * a Deployment's pod (its pod names change with every restart, its data does not), the
 * ReplicaSet's name for a bare ReplicaSet's pod, `<daemonset>@<node>` for a DaemonSet's pod (its
 * node's hostPath data; the pod's own name while it is not scheduled), else the pod's own name (a
 * StatefulSet's pods are stable and each has its own data). Kubernetes names cannot contain '/',
 * so this cannot escape the plugin folder.
 */
export function workloadPrefix(bslPrefix: string, namespace: string, folder: string): string {
  return [bslPrefix.replace(/^\/+|\/+$/g, ''), PLUGIN_FOLDER, namespace, folder].filter(Boolean).join('/');
}

/**
 * The record's `<namespace>/<workload>` folder, to be found under the plugin folder of whichever
 * location holds the Backup now: after a disaster or a migration the Backup Velero passes may name
 * another location (synced from the same bucket, or a replica) than the one that wrote the record.
 * Built from two path segments, the folder cannot leave the plugin folder.
 */
export function recordedWorkloadFolder(record: Pick<BackupRecord, 'prefix'>): string {
  const segments = record.prefix.split('/').filter(Boolean);
  const ours = segments.slice(-4, -2).join('/') === PLUGIN_FOLDER && isSubdir(segments.slice(-2).join('/'));
  if (!ours) throw new Error(`the backup record's prefix ${JSON.stringify(record.prefix)} is not <location prefix>/${PLUGIN_FOLDER}/<namespace>/<workload>: it was not written by this plugin`);
  return segments.slice(-2).join('/');
}

export function encodeRecord(record: BackupRecord): string {
  return JSON.stringify(record);
}

/** The record annotation's JSON, unchecked: undefined without one, an error when it does not parse. */
function parseRecordAnnotation(annotations: Record<string, string> | undefined): unknown {
  const raw = annotations?.[RECORD_ANNOTATION];
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw) as unknown;
  } catch (err) {
    throw new Error(`annotation ${RECORD_ANNOTATION} is not JSON (${(err as Error).message}); it is written by the backup action and must not be edited`);
  }
}

/** The record on a pod, or undefined when it has none; a record that does not parse is an error (the caller names the pod). */
export function readRecord(annotations: Record<string, string> | undefined): BackupRecord | undefined {
  const value = parseRecordAnnotation(annotations) as Record<string, unknown> | null | undefined;
  if (value === undefined) return undefined;
  if (value?.format !== RECORD_FORMAT) {
    const format = typeof value?.format === 'string' ? value.format : 'none';
    throw new Error(
      `annotation ${RECORD_ANNOTATION} is not a backup record this version understands (format ${JSON.stringify(format)}, expected ${RECORD_FORMAT} with bucket, prefix and name): ` +
        'restore with the plugin version that made the backup, or restore its data with velero-plugin-victoria restore (docs/velero-restore.md)',
    );
  }
  // Every field is checked here, once: a wrong type would otherwise fail far from its cause (a
  // number as prefix in a string method, a missing location as an unreachable API server).
  const wrong = recordFieldErrors(value);
  if (wrong.length > 0) {
    throw new Error(
      `annotation ${RECORD_ANNOTATION} is a broken ${RECORD_FORMAT} backup record (${wrong.join('; ')}): it is written by the backup action and must not be edited; ` +
        'restore its data with velero-plugin-victoria restore --src (docs/velero-restore.md), which reads the backup from the bucket without the record',
    );
  }
  if (value.dataSubdir !== undefined && (typeof value.dataSubdir !== 'string' || !isSubdir(value.dataSubdir))) {
    throw new Error(`annotation ${RECORD_ANNOTATION} names data directory ${JSON.stringify(value.dataSubdir)}, which is not a directory below the data volume; it is written by the backup action and must not be edited`);
  }
  return value as unknown as BackupRecord;
}

/** The record's required string fields: none may be empty either (each names a location, a bucket, a folder or a workload). */
const RECORD_STRINGS = ['storageLocation', 'bucket', 'prefix', 'name', 'workload'] as const satisfies ReadonlyArray<keyof BackupRecord>;
const RECORD_COUNTS = ['files', 'bytes'] as const satisfies ReadonlyArray<keyof BackupRecord>;

/** What is wrong with the fields of a record of this format, one phrase each (`bucket is missing`, `prefix is 7, not a string`); empty when nothing is. */
function recordFieldErrors(value: Record<string, unknown>): string[] {
  const wrong: string[] = [];
  // Short: the value is quoted to be recognised, and an edited record may hold anything.
  const shown = (v: unknown) => {
    const text = JSON.stringify(v);
    return text.length > 80 ? `${text.slice(0, 80)}…` : text;
  };
  for (const key of RECORD_STRINGS) {
    const v = value[key];
    if (v === undefined) wrong.push(`${key} is missing`);
    else if (typeof v !== 'string') wrong.push(`${key} is ${shown(v)}, not a string`);
    else if (v === '') wrong.push(`${key} is empty`);
  }
  if (value.kind === undefined) wrong.push('kind is missing');
  else if (!isSourceKind(value.kind)) wrong.push(`kind is ${shown(value.kind)}, not "metrics" or "logs"`);
  for (const key of RECORD_COUNTS) {
    const v = value[key];
    if (v === undefined) wrong.push(`${key} is missing`);
    else if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) wrong.push(`${key} is ${shown(v)}, not a whole number of 0 or more`);
  }
  return wrong;
}

/**
 * Where the record says the data went, for the delete action, which needs nothing else (the
 * backup's name is Velero's): any format that has a prefix is read, so that a backup made by
 * another version of the plugin is still removed when Velero deletes it (Velero deletes the backup
 * whatever the action answers, and its data would stay in the bucket). Undefined without a
 * record; an error for a record without a prefix.
 */
export function readRecordWhere(annotations: Record<string, string> | undefined): { prefix: string; bucket: string } | undefined {
  const value = parseRecordAnnotation(annotations) as { prefix?: unknown; bucket?: unknown } | null | undefined;
  if (value === undefined) return undefined;
  if (typeof value?.prefix !== 'string' || value.prefix === '') {
    throw new Error(`annotation ${RECORD_ANNOTATION} has no prefix; it is written by the backup action and must not be edited`);
  }
  return { prefix: value.prefix, bucket: typeof value.bucket === 'string' ? value.bucket : '' };
}

/** A relative path of plain segments: it stays below the directory it is joined to. */
function isSubdir(path: string): boolean {
  const segments = path.split('/');
  return segments.every((s) => s !== '' && s !== '.' && s !== '..');
}

/**
 * The companion's data directory relative to the data volume's mount (`mount`), for the record:
 * undefined when it is the mount itself, or not below it (a companion of an older version reports
 * none; one whose data dir lies elsewhere has no mount the restore could find).
 */
export function dataSubdirOf(dataDir: string | undefined, mount: string): string | undefined {
  if (dataDir === undefined) return undefined;
  const rel = posix.relative(mount, posix.normalize(dataDir));
  return rel !== '' && isSubdir(rel) ? rel : undefined;
}
