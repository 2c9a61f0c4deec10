/**
 * The restore action's part of a restore plan (engine/plan.ts): build it for one backup folder,
 * write it into the bucket beside the plugin's data (`<bsl prefix>/plugins/victoria/_restore-plans/
 * <restore uid>/<namespace>.<pod>.json`) and presign its own URL. The URLs are secrets until they
 * expire: they are returned to be put into the init container's command, never logged.
 */
import type { Readable } from 'node:stream';
import { countedBefore } from '../engine/manifest.js';
import { buildRestorePlan } from '../engine/plan.js';
import { s3Presigner } from '../store/s3-presign.js';
import type { S3Store } from '../store/s3.js';
import type { ByteRange, ObjectInfo, ObjectStore } from '../store/types.js';

/**
 * Beside the namespaces' folders (`<namespace>/<workload>/<backup>/`), under a name no namespace
 * can have (a DNS label has no `_`): a namespace called `restore-plans` would otherwise share the
 * folder, and the deletion of expired plans would take its backups.
 */
export const PLAN_FOLDER = '_restore-plans';

/** A plan's key under the store: `_restore-plans/<restore uid>/<namespace>.<pod>.json`, nothing deeper. */
const PLAN_KEY = new RegExp(`^${PLAN_FOLDER}/[^/]+/[^/]+\\.json$`);

/**
 * A plan is useless once its links expire, after restorePlanExpirySeconds: at most 7 days, the
 * limit of SigV4 presigned URLs. Plans older than that (and an hour, for clock skew) are deleted.
 */
const PLAN_MAX_AGE_MS = 7 * 86_400_000 + 3_600_000;

/** Deletes the plans of earlier restores whose links have all expired; returns how many. Nothing but plans. */
export async function removeExpiredPlans(store: ObjectStore, now = new Date()): Promise<number> {
  const expired: string[] = [];
  for await (const o of store.list(`${PLAN_FOLDER}/`)) {
    if (PLAN_KEY.test(o.key) && o.lastModified && now.getTime() - o.lastModified.getTime() > PLAN_MAX_AGE_MS) expired.push(o.key);
  }
  if (expired.length > 0) await store.delete(expired);
  return expired.length;
}

export interface RestorePlanRequest {
  /** The store at `<bsl prefix>/plugins/victoria`. */
  store: S3Store;
  /** `<namespace>/<workload>/<backup>` under the store. */
  backupKey: string;
  /** Where the plan goes under the store: `_restore-plans/<restore uid>/<namespace>.<pod>.json`. */
  planKey: string;
  restore: string;
  expiresSeconds: number;
  /** BackupStorageLocation `publicUrl`: the endpoint pods reach the object store at. */
  publicUrl?: string;
}

/**
 * Links signed with temporary credentials (STS: IRSA, instance roles, assumed roles) stop working
 * when the session ends, whatever their X-Amz-Expires. A plan is made to expire a minute before,
 * so that its expiry is what the init container sees; a session closer to its end than this is
 * not used (the SDK renews credentials five minutes before they expire, so this is rare).
 */
const SESSION_MARGIN_SECONDS = 60;

/** When the credentials that sign the store's URLs expire, if they do. */
async function credentialsExpiration(store: S3Store): Promise<Date | undefined> {
  try {
    return (await store.client.config.credentials()).expiration;
  } catch {
    return undefined; // presigning reports the failure, with its message
  }
}

/** The plan's lifetime: `requested`, or less when the signing session ends sooner (`sessionEndsAt`: when it ends). */
function planLifetime(requested: number, expiration: Date | undefined, now = Date.now()): { seconds: number; sessionEndsAt?: string } {
  if (!expiration) return { seconds: requested };
  const left = Math.floor((expiration.getTime() - now) / 1000) - SESSION_MARGIN_SECONDS;
  if (left >= requested) return { seconds: requested };
  if (left < SESSION_MARGIN_SECONDS) {
    throw new Error(
      `the location's credentials are temporary and expire at ${expiration.toISOString()}, too soon for the restore plan's links, which die with them: run the restore again once they are renewed`,
    );
  }
  return { seconds: left, sessionEndsAt: expiration.toISOString() };
}

export interface MadeRestorePlan {
  /** Presigned GET URL of the plan. A secret until it expires. */
  url: string;
  sha256: string;
  kind: 'metrics' | 'logs';
  /** The counts at backup time; `{}` when the database could not count (then `countsError`). */
  counts: Record<string, number>;
  countsError?: string;
  /** The snapshot time. */
  createdAt: string;
  /** The counts at backup time cover data before this instant (Manifest.countedBefore). */
  countedBefore: string;
  /** The counts at backup time cover data from this instant on (absent: from the first sample). */
  countedFrom?: string;
  files: number;
  bytes: number;
  expiresAt: string;
  /** Set when the plan expires before restorePlanExpirySeconds because the signing session ends then. */
  sessionEndsAt?: string;
  /** What wrote the data: the database's version if known, and the files' paths (olderDatabaseProblem). */
  source: { version?: string; files: string[] };
}

/** A read-only view of `store` under `prefix` (buildRestorePlan reads one backup folder through it). */
function under(store: ObjectStore, prefix: string): ObjectStore {
  const p = `${prefix}/`;
  return {
    location: `${store.location}/${prefix}`,
    async *list(sub: string): AsyncIterable<ObjectInfo> {
      for await (const o of store.list(p + sub)) yield { ...o, key: o.key.slice(p.length) };
    },
    async listDirectories(sub: string): Promise<string[]> {
      return (await store.listDirectories(p + sub)).map((d) => d.slice(p.length));
    },
    async head(key: string): Promise<ObjectInfo | undefined> {
      const o = await store.head(p + key);
      return o && { ...o, key };
    },
    get: (key: string, range?: ByteRange): Promise<Readable> => store.get(p + key, range),
    put: () => Promise.reject(new Error('read-only')),
    copy: () => Promise.reject(new Error('read-only')),
    delete: () => Promise.reject(new Error('read-only')),
  };
}

export async function makeRestorePlan(req: RestorePlanRequest): Promise<MadeRestorePlan> {
  const slash = req.backupKey.lastIndexOf('/');
  const workload = req.backupKey.slice(0, slash);
  const backupName = req.backupKey.slice(slash + 1);
  const lifetime = planLifetime(req.expiresSeconds, await credentialsExpiration(req.store));
  const presigner = s3Presigner(req.store, req.publicUrl ? { publicUrl: req.publicUrl } : {});
  try {
    const built = await buildRestorePlan({
      store: under(req.store, workload),
      backupName,
      restore: req.restore,
      expiresInSeconds: lifetime.seconds,
      presign: (key, seconds) => presigner.presign(`${workload}/${key}`, seconds),
    });
    const { manifest } = built;
    await req.store.put(req.planKey, built.bytes, built.bytes.length);
    const url = await presigner.presign(req.planKey, lifetime.seconds);
    return {
      url,
      sha256: built.sha256,
      kind: built.plan.kind,
      counts: built.plan.counts,
      ...(manifest.countsError ? { countsError: manifest.countsError } : {}),
      createdAt: manifest.createdAt,
      countedBefore: countedBefore(manifest),
      ...(manifest.countedFrom ? { countedFrom: manifest.countedFrom } : {}),
      files: manifest.totals.files,
      bytes: manifest.totals.bytes,
      expiresAt: built.plan.expiresAt,
      ...(lifetime.sessionEndsAt ? { sessionEndsAt: lifetime.sessionEndsAt } : {}),
      source: { ...(manifest.source.version ? { version: manifest.source.version } : {}), files: manifest.trees.flatMap((t) => t.files.map((f) => f.path)) },
    };
  } finally {
    presigner.destroy();
  }
}
