/** Decoding of the JSON byte fields of Velero requests, with errors that say what was wrong. */
import type { KubeObject } from './types.js';

function preview(bytes: Buffer): string {
  const text = bytes.subarray(0, 80).toString('utf8');
  return bytes.length > 80 ? `${text}…` : text;
}

/** Parse `bytes` as a JSON object; `what` names the request field in the error. */
function parseObject(bytes: Buffer | undefined, what: string): Record<string, unknown> {
  if (!bytes || bytes.length === 0) throw new Error(`${what} is empty: expected the JSON of a Kubernetes object`);
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new Error(`${what} is not valid JSON (${(err as Error).message}); starts with: ${JSON.stringify(preview(bytes))}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`${what} must be a JSON object, got ${Array.isArray(value) ? 'an array' : String(value === null ? 'null' : typeof value)}`);
  }
  return value as Record<string, unknown>;
}

/** Parse an item: a JSON object with a non-empty string `kind`, as Velero requires of replies too. */
export function parseItem(bytes: Buffer | undefined, what = 'item'): KubeObject {
  const obj = parseObject(bytes, what);
  if (typeof obj.kind !== 'string' || obj.kind === '') {
    throw new Error(`${what} has no "kind": expected a Kubernetes object such as {"apiVersion":"v1","kind":"Pod",...}`);
  }
  if (obj.metadata !== undefined && (obj.metadata === null || typeof obj.metadata !== 'object' || Array.isArray(obj.metadata))) {
    throw new Error(`${what} has a "metadata" that is not an object`);
  }
  return obj as KubeObject;
}

/**
 * The item as the backup holds it (RestoreItemActionExecuteRequest.itemFromBackup), or undefined
 * when Velero sent none or no JSON object: a restore action then reads the item itself instead.
 */
export function parseItemFromBackup(bytes: Buffer | undefined): KubeObject | undefined {
  if (!bytes || bytes.length === 0) return undefined;
  try {
    const value = JSON.parse(bytes.toString('utf8')) as KubeObject | null;
    return typeof value === 'object' && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The value of the `backup` / `restore` field of a log line: Velero's own loggers for a backup and
 * a restore carry `<namespace>/<name>`, and a plugin's field of the same name replaces theirs
 * (logrus_adapter.go), so it is given in the same form: `grep backup=velero/NAME` on the server's
 * log then finds the plugin's lines too.
 */
export const logRef = (cr: { veleroNamespace: string; name: string }): string => `${cr.veleroNamespace}/${cr.name}`;

/**
 * The Backup or Restore Velero sends along with each item (ExecuteRequest.backup,
 * RestoreItemActionExecuteRequest.restore): its JSON as `T`, of which only metadata.name is
 * checked, that name, and Velero's namespace, where the CR lives. The actions' messages name the
 * CR, not the request field as parseObject's do.
 */
export function parseVeleroCR<T extends { metadata?: { name?: string; namespace?: string } }>(
  kind: 'Backup' | 'Restore',
  bytes: Buffer,
  env: NodeJS.ProcessEnv,
): { cr: T; name: string; veleroNamespace: string } {
  let cr: T | null;
  try {
    cr = JSON.parse(bytes.toString('utf8')) as T | null;
  } catch (err) {
    throw new Error(`the ${kind} Velero sent is not JSON (${(err as Error).message})`);
  }
  if (!cr?.metadata?.name) throw new Error(`the ${kind} Velero sent has no metadata.name`);
  // Velero's own fallback when VELERO_NAMESPACE is unset is "velero".
  return { cr, name: cr.metadata.name, veleroNamespace: cr.metadata.namespace || env.VELERO_NAMESPACE || 'velero' };
}

/** "namespace/name" of an item for messages. */
export function describeItem(item: KubeObject): string {
  const ns = typeof item.metadata?.namespace === 'string' ? item.metadata.namespace : '';
  const name = typeof item.metadata?.name === 'string' ? item.metadata.name : '<unnamed>';
  return `${item.kind} ${ns ? `${ns}/` : ''}${name}`;
}

/**
 * The item's resource as Velero's logs name it (`pods`, `deployments.apps`), for the log fields
 * that `velero backup describe --details` groups messages by. The plural is the kind lower-cased
 * with an s, which holds for every kind Velero hands our actions (Pod, Deployment, ReplicaSet,
 * StatefulSet); the API group comes from apiVersion.
 */
export function groupResource(item: KubeObject): string {
  const apiVersion = typeof item.apiVersion === 'string' ? item.apiVersion : '';
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  const plural = `${item.kind.toLowerCase()}s`;
  return group ? `${plural}.${group}` : plural;
}
