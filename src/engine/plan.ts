/**
 * Restore plans: everything a restore init container needs to read one backup, without credentials.
 *
 * The restore action (which has the bucket's credentials) opens the backup, presigns a GET URL for
 * every object the restore reads (our manifest, our complete marker and every part of every file;
 * not vmbackup's own markers, which restore never reads) and writes this JSON into the bucket. The
 * init container gets the plan's own presigned URL and the SHA-256 of its bytes, so a plan that was
 * changed or truncated is refused before anything is read, and an expired one says so. Every file's
 * SHA-256 and target path are in the manifest (which the complete marker pins), so the plan does
 * not repeat them. `PlanStore` (store/plan.ts) serves a parsed plan as a read-only ObjectStore, so
 * the restore engine runs unchanged on it.
 *
 * Object keys in `objects` are relative to the backup folder (`victoria_manifest.ignore`,
 * `data/small/…/values.bin/<size>_<offset>_<size>`). The URLs are secrets until they expire: they
 * must never be logged (common/redact.ts).
 */
import { createHash } from 'node:crypto';
import type { ObjectStore } from '../store/types.js';
import { openBackup } from './catalog.js';
import { checkRelPath, checkTreePlaces, partKey, splitParts } from './layout.js';
import { COMPLETE_KEY, MANIFEST_KEY, type Manifest, type SourceKind } from './manifest.js';
import { forEachLimit } from '../store/pool.js';
import { MAX_PRESIGN_SECONDS } from '../store/s3-presign.js';

/** Extra CA certificates (PEM) for the plan's URLs, given to the init container (public data, not a credential). */
export const PLAN_CA_ENV = 'VELERO_PLUGIN_VICTORIA_CA_CERT';

export const RESTORE_PLAN_FORMAT = 'velero-plugin-victoria/restore-plan/v1';
/** A plan is of use while its URLs are: at most S3's limit for a presigned URL. */
export const MAX_PLAN_EXPIRY_SECONDS = MAX_PRESIGN_SECONDS;

export interface RestorePlanObject {
  /** Presigned GET URL. A secret until it expires. */
  url: string;
  size: number;
}

export interface RestorePlan {
  format: typeof RESTORE_PLAN_FORMAT;
  /** The Velero restore this plan was made for. */
  restore: string;
  /** The backup folder's name (relative to the workload folder). */
  backup: string;
  kind: SourceKind;
  createdAt: string;
  expiresAt: string;
  /** The manifest's counts at backup time (what a restored database should answer). */
  counts: Record<string, number>;
  /** Every object the restore reads, keyed relative to the backup folder. */
  objects: Record<string, RestorePlanObject>;
}

/** Presigns a GET of `key` (relative to the store root, i.e. `<backup>/<object>`), valid for `expiresInSeconds`. */
export type PresignGet = (key: string, expiresInSeconds: number) => Promise<string>;

export interface BuildRestorePlanOptions {
  /** The store the backup is in (for the restore action: the workload folder of the location). */
  store: ObjectStore;
  /** The backup folder under the store root. */
  backupName: string;
  /** The Velero restore's name. */
  restore: string;
  /** How long the URLs (and the plan) stay valid: 1 s to 7 days. */
  expiresInSeconds: number;
  presign: PresignGet;
  now?: Date;
}

export interface BuiltRestorePlan {
  plan: RestorePlan;
  /** The plan as written into the bucket (JSON, UTF-8). */
  bytes: Buffer;
  /** SHA-256 of `bytes`, hex: the init container's `--plan-sha256`. */
  sha256: string;
  /** The backup's manifest, as opened (complete, pinned by its marker). */
  manifest: Manifest;
}

export type RestorePlanProblem = 'sha256' | 'format' | 'expired';

/** Why a plan cannot be used: it does not match its SHA-256, is not a plan, or has expired. */
export class RestorePlanError extends Error {
  override name = 'RestorePlanError';
  constructor(
    readonly problem: RestorePlanProblem,
    message: string,
  ) {
    super(message);
  }
}

const sha256Hex = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Presigning is local signing, but a custom presigner might call out: a bounded number at once. */
const PRESIGN_CONCURRENCY = 16;

/**
 * Opens the backup (an incomplete one is refused with the catalog's error), checks that every object
 * the restore reads is in the folder with the size the manifest says, and presigns them all.
 */
export async function buildRestorePlan(opts: BuildRestorePlanOptions): Promise<BuiltRestorePlan> {
  const { store, backupName, restore, expiresInSeconds, presign } = opts;
  if (!Number.isSafeInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > MAX_PLAN_EXPIRY_SECONDS) {
    throw new Error(`restore plan expiry must be a whole number of seconds from 1 to ${MAX_PLAN_EXPIRY_SECONDS} (7 days, the longest S3 allows for presigned URLs), got ${expiresInSeconds}`);
  }
  if (!restore) throw new Error('a restore plan needs the restore name');
  checkRelPath(backupName, 'backup name');
  const now = opts.now ?? new Date();
  const manifest = await openBackup(store, backupName);
  const where = `${store.location}/${backupName}`;
  // Refused here rather than by the init container, which would fail the same way on every start.
  try {
    checkTreePlaces(manifest.trees);
  } catch (err) {
    throw new Error(`${where}: its manifest cannot be restored: ${(err as Error).message}`);
  }

  // What the restore reads, with the sizes it expects.
  const wanted = new Map<string, number | undefined>([
    [MANIFEST_KEY, undefined],
    [COMPLETE_KEY, undefined],
  ]);
  for (const tree of manifest.trees) {
    for (const file of tree.files) for (const part of splitParts(file.path, file.size)) wanted.set(`${tree.prefix}${partKey(part)}`, part.size);
  }
  const found = new Map<string, number>();
  for await (const o of store.list(`${backupName}/`)) {
    const rel = o.key.slice(backupName.length + 1);
    if (wanted.has(rel)) found.set(rel, o.size);
  }
  const missing: string[] = [];
  const wrongSize: string[] = [];
  for (const [rel, size] of wanted) {
    const got = found.get(rel);
    if (got === undefined) missing.push(rel);
    else if (size !== undefined && got !== size) wrongSize.push(`${rel} (${got} bytes, the manifest says ${size})`);
  }
  if (missing.length > 0 || wrongSize.length > 0) {
    const what = [
      ...(missing.length ? [`${missing.length} object(s) missing, e.g. ${missing.slice(0, 3).join(', ')}`] : []),
      ...(wrongSize.length ? [`${wrongSize.length} object(s) with the wrong size, e.g. ${wrongSize.slice(0, 3).join(', ')}`] : []),
    ];
    throw new Error(`${where} is damaged: ${what.join('; ')}; it cannot be restored (run verify on it, and use another backup)`);
  }

  const keys = [...wanted.keys()].sort();
  const urls = new Map<string, string>();
  await forEachLimit(keys, PRESIGN_CONCURRENCY, async (rel) => {
    urls.set(rel, await presign(`${backupName}/${rel}`, expiresInSeconds));
  });
  const objects: Record<string, RestorePlanObject> = {};
  for (const rel of keys) objects[rel] = { url: urls.get(rel)!, size: found.get(rel)! };

  const plan: RestorePlan = {
    format: RESTORE_PLAN_FORMAT,
    restore,
    backup: backupName,
    kind: manifest.kind,
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + expiresInSeconds * 1000).toISOString(),
    counts: manifest.counts,
    objects,
  };
  const bytes = Buffer.from(JSON.stringify(plan), 'utf8');
  return { plan, bytes, sha256: sha256Hex(bytes), manifest };
}

function bad(message: string): RestorePlanError {
  return new RestorePlanError('format', `not a usable restore plan: ${message}`);
}

/**
 * Checks a plan's bytes against the SHA-256 the init container was given (first: nothing of a
 * changed plan is trusted), then its format and fields, then that it has not expired.
 */
export function parsePlan(bytes: Buffer | string, expectedSha256: string, now: Date = new Date()): RestorePlan {
  const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  const expected = expectedSha256.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(expected)) throw new RestorePlanError('sha256', `the restore plan's SHA-256 must be 64 hex digits, got ${JSON.stringify(expectedSha256)}`);
  const actual = sha256Hex(buf);
  if (actual !== expected) {
    throw new RestorePlanError('sha256', `restore plan (${buf.length} bytes) does not match its SHA-256: expected ${expected}, got ${actual}: it was changed or truncated`);
  }

  let value: unknown;
  try {
    value = JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw bad(`not JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('not a JSON object');
  const p = value as Partial<RestorePlan>;
  if (p.format !== RESTORE_PLAN_FORMAT) throw bad(`unknown format ${JSON.stringify(p.format)} (this version reads ${RESTORE_PLAN_FORMAT})`);
  if (typeof p.restore !== 'string' || !p.restore) throw bad('no restore name');
  if (typeof p.backup !== 'string') throw bad('no backup name');
  try {
    checkRelPath(p.backup, 'backup name');
  } catch (err) {
    throw bad((err as Error).message);
  }
  if (p.kind !== 'metrics' && p.kind !== 'logs') throw bad(`unknown kind ${JSON.stringify(p.kind)}`);
  const expiresMs = typeof p.expiresAt === 'string' ? Date.parse(p.expiresAt) : NaN;
  if (Number.isNaN(expiresMs)) throw bad(`expiresAt ${JSON.stringify(p.expiresAt)} is not a time`);
  if (typeof p.createdAt !== 'string') throw bad('no createdAt');
  if (typeof p.counts !== 'object' || p.counts === null) throw bad('no counts');
  if (typeof p.objects !== 'object' || p.objects === null || Array.isArray(p.objects)) throw bad('no objects');
  for (const [key, o] of Object.entries(p.objects)) {
    try {
      checkRelPath(key, 'object key');
    } catch (err) {
      throw bad((err as Error).message);
    }
    // Never echo the URL: it is a secret.
    if (typeof o !== 'object' || o === null || typeof o.url !== 'string' || !/^https?:\/\//.test(o.url)) throw bad(`object ${key} has no http(s) URL`);
    if (!Number.isSafeInteger(o.size) || o.size < 0) throw bad(`object ${key} has no valid size`);
  }
  for (const key of [MANIFEST_KEY, COMPLETE_KEY]) if (!(key in p.objects)) throw bad(`it lacks ${key}`);

  if (expiresMs <= now.getTime()) {
    throw new RestorePlanError('expired', expiredMessage(p.expiresAt!, p.restore));
  }
  return p as RestorePlan;
}

/** The message for a plan (or its URLs) past its expiry; `expiresAt` when known. */
export function expiredMessage(expiresAt: string | undefined, restore?: string): string {
  return (
    `restore plan expired${expiresAt ? ` at ${expiresAt}` : ''}${restore ? ` (restore ${restore})` : ''}: run the restore again after deleting the workload ` +
    '(a pod deleted alone comes back from its template without this restore); plans are valid for restorePlanExpirySeconds, set in the plugin ConfigMap'
  );
}
