/**
 * Whether a parsed manifest has the shape this version writes, field by field, before anything
 * reads it. The complete marker pins the manifest's bytes, not their meaning: a manifest written by
 * another tool under our format string, or edited together with its marker, would otherwise fail
 * deep inside a restore or a backup with a TypeError that names neither the backup nor the field,
 * and, as the newest complete backup, fail every later backup of the workload that takes it as a base.
 */
import type { ManifestFile } from './manifest.js';

/** A field's problem: undefined, or its path below the field (`.x`, `[3]…`) and what is wrong, or `' ' + what is wrong`. */
type Check = (v: unknown) => string | undefined;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const str: Check = (v) => (typeof v === 'string' ? undefined : ' is not a string');
const count: Check = (v) => (Number.isSafeInteger(v) && (v as number) >= 0 ? undefined : ' is not a non-negative integer');
const num: Check = (v) => (typeof v === 'number' && Number.isFinite(v) ? undefined : ' is not a number');
const sha256: Check = (v) => (typeof v === 'string' && /^[0-9a-f]{64}$/.test(v) ? undefined : ' is not a SHA-256 in hex');
const oneOf =
  (...values: string[]): Check =>
  (v) =>
    typeof v === 'string' && values.includes(v) ? undefined : ` is not one of ${values.join(', ')}`;
const optional =
  (check: Check): Check =>
  (v) =>
    v === undefined ? undefined : check(v);

const fields =
  (checks: Record<string, Check>): Check =>
  (v) => {
    if (!isObject(v)) return ' is not an object';
    for (const [name, check] of Object.entries(checks)) {
      const problem = check(v[name]);
      if (problem !== undefined) return `.${name}${problem}`;
    }
    return undefined;
  };

const items =
  (check: Check): Check =>
  (v) => {
    if (!Array.isArray(v)) return ' is not an array';
    for (const [i, item] of v.entries()) {
      const problem = check(item);
      if (problem !== undefined) return `[${i}]${problem}`;
    }
    return undefined;
  };

/** An object of any keys whose values all pass `check` (the counts). */
const values =
  (check: Check): Check =>
  (v) => {
    if (!isObject(v)) return ' is not an object';
    for (const [key, item] of Object.entries(v)) {
      const problem = check(item);
      if (problem !== undefined) return `.${key}${problem}`;
    }
    return undefined;
  };

const etag: Check = (v) => (typeof v === 'string' && v !== '' ? undefined : ' is not an ETag');
const FILE = fields({ path: str, size: count, mtimeMs: num, sha256, origin: oneOf('uploaded', 'copied'), etags: optional(items(etag)) });
const TREE = fields({ prefix: str, restoreTo: str, files: items(FILE) });
const MANIFEST = fields({
  name: str,
  kind: oneOf('metrics', 'logs'),
  source: fields({ url: optional(str), version: optional(str), snapshots: items(str) }),
  counts: values(count),
  countsError: optional(str),
  countedFrom: optional(str),
  countedBefore: optional(str),
  createdAt: str,
  completedAt: str,
  basedOn: optional(str),
  copiesRefused: optional(fields({ count, first: str })),
  resumed: optional(fields({ files: count, bytes: count })),
  resumedFrom: optional(fields({ backup: str, files: count, bytes: count })),
  totals: fields({ files: count, bytes: count, bytesUploaded: count, bytesCopied: count }),
  durationSeconds: num,
  trees: items(TREE),
});

/** Whether `value` is a manifest's file entry as this version writes it (the journal's lines hold them too). */
export function isManifestFile(value: unknown): value is ManifestFile {
  return FILE(value) === undefined;
}

/** The first field of `value` that is not as this version writes it (`trees[0].files[3].sha256 is not a SHA-256 in hex`), or undefined. */
export function manifestShapeProblem(value: unknown): string | undefined {
  const problem = MANIFEST(value);
  if (problem === undefined) return undefined;
  return problem.startsWith(' ') ? `the manifest${problem}` : problem.slice(1);
}
