import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseFlags } from '../../common/parse-flags.js';
import { expiredMessage, parsePlan, PLAN_CA_ENV, RestorePlanError, type RestorePlan } from '../../engine/plan.js';
import { checkDataDir, DataDirNotEmptyError, RESTORE_MARKER } from '../../engine/data-dir.js';
import { formatOwner, type FileOwner } from '../../engine/file-owner.js';
import { restoreBackup, type RestoreResult } from '../../engine/restore.js';
import { readRestoredMarker, writeRestoredMarker } from '../../engine/restored-marker.js';
import { fetchRestorePlan, PlanStore, PresignedUrlRefused, type PresignedHttpOptions } from '../../store/plan.js';
import { scrubUrls } from '../../common/redact.js';
import { caBundle } from '../../store/s3-client.js';
import { formatBytes, progressPrinter } from '../progress.js';
import { maxBytesPerSecond, RATE_FLAG } from '../rate-flag.js';
import { givenStoreFlags, openStoreFromFlags, splitBackupPath, STORE_FLAGS, STORE_USAGE } from '../store-flags.js';
import { UsageError } from '../../common/usage-error.js';
import { jsonOnFailure } from '../json-failure.js';
import { storeRetries } from '../store-retries.js';

export const RESTORE_USAGE = `velero-plugin-victoria restore --src ROOT/NAME --data-dir DIR [--replace] [--no-direct-io] [--max-bytes-per-second R] [--chown UID[:GID]] [--json]
velero-plugin-victoria restore --plan-url URL --plan-sha256 HEX --data-dir DIR [--replace] [--no-direct-io] [--max-bytes-per-second R] [--chown UID[:GID]] [--json]

Downloads backup ROOT/NAME into DIR (the database must be stopped; DIR becomes its -storageDataPath)
and checks every file's SHA-256. Refuses an incomplete backup. Refuses a non-empty DIR unless
--replace is given; then the current contents are moved aside (DIR-replaced-<time>, or DIR/.replaced-<time>
when DIR is a mount point), never deleted.
VictoriaLogs partitions land in DIR/partitions/YYYYMMDD. Files are written with O_DIRECT (no copy
through the page cache) where DIR's file system takes it; --no-direct-io writes through the page cache.
--max-bytes-per-second caps the download rate of the whole restore, e.g. 50MiB (units KB, MB, GB, TB,
KiB, MiB, GiB, TiB, as vmrestore's -maxBytesPerSecond). 0: no limit.
--chown UID[:GID] gives DIR and everything restored to that user (and group), for a database that
runs as another user than the restore; needs root (the CHOWN capability). Without it the restoring
user owns the files.

Plan mode (the restore init container that the Velero restore action injects; no credentials):
  --plan-url URL             presigned URL of the restore plan the restore action wrote; it names a
                             presigned URL for every object of the backup. Never printed.
  --plan-sha256 HEX          SHA-256 of the plan: a changed or truncated plan is refused
  --ca-cert-file F           extra CA bundle (PEM) for the URLs (or the PEM in $${PLAN_CA_ENV});
                             --insecure-skip-tls-verify to skip verification
A plan expires (restorePlanExpirySeconds in the plugin ConfigMap): run the Velero restore again.

${STORE_USAGE}`;

function planTls(values: { 'ca-cert-file'?: string | undefined; 'insecure-skip-tls-verify'?: boolean | undefined }, env: NodeJS.ProcessEnv): PresignedHttpOptions {
  const ca = caBundle(env[PLAN_CA_ENV]?.trim() || undefined, values['ca-cert-file'], { inline: `$${PLAN_CA_ENV}`, file: '--ca-cert-file' });
  return { ...(ca ? { ca } : {}), ...(values['insecure-skip-tls-verify'] ? { insecureSkipTLSVerify: true } : {}) };
}

interface PlanModeArgs {
  planUrl: string;
  planSha256: string;
  dataDir: string;
  replace: boolean;
  directIo: boolean;
  maxBytesPerSecond: number | undefined;
  chown: FileOwner | undefined;
  json: boolean;
  tls: PresignedHttpOptions;
  /** Told the plan once it is read and checked (a failure's --json object names its restore and backup). */
  planRead: (plan: RestorePlan) => void;
}

/** `--chown UID[:GID]`: numeric ids only, as the database's securityContext names them. */
function parseOwner(value: string | undefined): FileOwner | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(value);
  const uid = Number(m?.[1]);
  const gid = m?.[2] === undefined ? undefined : Number(m[2]);
  if (!m || uid > 0xfffffffe || (gid !== undefined && gid > 0xfffffffe)) {
    throw new UsageError(`--chown ${JSON.stringify(value)} is not UID or UID:GID (numbers, as runAsUser and runAsGroup name them)`);
  }
  return gid === undefined ? { uid } : { uid, gid };
}

/** Why links die before the plan's expiry: the restore action caps it at the session's end, but a session can be revoked. */
const SESSION_EXPIRED =
  '; its links were signed with temporary credentials (S3: ExpiredToken), whose session ended: a restore that takes longer needs longer sessions or static keys for the location (docs/velero-restore.md)';

/**
 * The init container's restore: fetch the plan, check its SHA-256 and expiry, then the engine's
 * restore over the plan's URLs. No URL is ever printed: messages name the restore and the backup.
 */
async function restoreFromPlan(a: PlanModeArgs): Promise<number> {
  const hide = (text: string) => scrubUrls(text.split(a.planUrl).join('<plan URL>'));
  const resumeToken = `restore plan ${a.planSha256}`;
  const done = await readRestoredMarker(a.dataDir);
  if (done?.planSha256 === a.planSha256) {
    // The init container runs again (the pod's sandbox was recreated): the data is the database's
    // now. A marker of this restore left beside the note (stopped between the two) goes.
    const marker = join(a.dataDir, RESTORE_MARKER);
    if ((await readFile(marker, 'utf8').catch(() => undefined)) === resumeToken) await rm(marker);
    const summary = { restore: done.restore, backup: done.backup, dataDir: a.dataDir, alreadyRestored: true, restoredAt: done.completedAt };
    process.stdout.write(
      a.json ? `${JSON.stringify(summary)}\n` : `backup ${done.backup} (Velero restore ${done.restore}) was restored into ${a.dataDir} at ${done.completedAt}; the data there is left as it is\n`,
    );
    return 0;
  }
  let plan: RestorePlan | undefined;
  let store: PlanStore | undefined;
  let res: RestoreResult;
  try {
    // A data directory the restore would refuse is named first: after hours of CrashLoopBackOff
    // the plan has expired too, and "expired" would hide what to fix.
    await checkDataDir(a.dataDir, { replace: a.replace, resumeToken, onWarning: warn });
    let bytes: Buffer;
    try {
      bytes = await fetchRestorePlan(a.planUrl, { ...a.tls, onRetry: storeRetries.onRetry });
    } catch (err) {
      // S3's answer to a presigned URL past its X-Amz-Expires (AccessDenied "Request has expired", with <Expires>).
      if (err instanceof PresignedUrlRefused && (err.urlExpired || err.sessionExpired)) {
        throw new RestorePlanError('expired', `${expiredMessage(err.expires)}${err.sessionExpired ? SESSION_EXPIRED : ''}`);
      }
      throw err;
    }
    const parsed = parsePlan(bytes, a.planSha256, new Date());
    plan = parsed;
    a.planRead(parsed);
    store = new PlanStore(parsed, { ...a.tls, onRetry: storeRetries.onRetry });
    const progress = progressPrinter(`restore ${plan.backup} (Velero restore ${plan.restore})`);
    res = await restoreBackup({
      store,
      name: store.backupName,
      dataDir: a.dataDir,
      replace: a.replace,
      directIo: a.directIo,
      ...(a.maxBytesPerSecond ? { maxBytesPerSecond: a.maxBytesPerSecond } : {}),
      resumeToken,
      ...(a.chown ? { chown: a.chown } : {}),
      beforeUnmark: () => writeRestoredMarker(a.dataDir, { planSha256: a.planSha256, restore: parsed.restore, backup: parsed.backup, completedAt: new Date().toISOString() }),
      onProgress: (p) => progress.update(p),
    });
    progress.done();
  } catch (err) {
    let message = err instanceof Error ? err.message : String(err);
    if (plan && err instanceof PresignedUrlRefused && (Date.parse(plan.expiresAt) <= Date.now() || err.urlExpired || err.sessionExpired)) {
      message = `${expiredMessage(plan.expiresAt, plan.restore)}${err.sessionExpired ? SESSION_EXPIRED : ''} (${message})`;
    } else if (err instanceof DataDirNotEmptyError) {
      message += ' In a Velero restore, set restoreReplace: "true" in the plugin ConfigMap, and run the restore again.';
    }
    throw new Error(hide(message));
  } finally {
    await store?.close();
  }
  printSummary(res, { restore: plan.restore, backup: plan.backup }, `backup ${plan.backup} (Velero restore ${plan.restore})`, a.dataDir, a.json);
  return 0;
}

/** One JSON object with --json, else one line (and where the old contents went). */
function printSummary(res: RestoreResult, source: { restore?: string; backup: string }, what: string, dataDir: string, json: boolean): void {
  const summary = {
    ...source,
    dataDir,
    kind: res.manifest.kind,
    files: res.files,
    bytesTotal: res.bytes,
    verified: true,
    movedAside: res.movedAside ?? null,
    owner: res.owner ? formatOwner(res.owner) : null,
    ...(res.resumedFiles !== undefined ? { resumedFiles: res.resumedFiles } : {}),
    directIo: res.directIo,
    durationSeconds: res.durationSeconds,
    counts: res.manifest.counts,
  };
  if (json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return;
  }
  process.stdout.write(
    `restored ${what} into ${dataDir}: ${summary.files} files, ${formatBytes(summary.bytesTotal)}, every SHA-256 verified, in ${summary.durationSeconds.toFixed(1)} s\n` +
      (res.owner ? `owned by ${formatOwner(res.owner)}\n` : '') +
      (res.movedAside ? `previous contents moved to ${res.movedAside}\n` : ''),
  );
}

export async function restoreCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parseFlags({
    args,
    options: {
      src: { type: 'string' },
      'plan-url': { type: 'string' },
      'plan-sha256': { type: 'string' },
      'data-dir': { type: 'string' },
      replace: { type: 'boolean' },
      'direct-io': { type: 'boolean', default: true },
      chown: { type: 'string' },
      json: { type: 'boolean' },
      ...RATE_FLAG,
      ...STORE_FLAGS,
    },
    allowNegative: true,
  });
  const rate = maxBytesPerSecond(values['max-bytes-per-second']);
  const chown = parseOwner(values.chown);
  if (values['plan-url'] !== undefined || values['plan-sha256'] !== undefined) {
    if (values.src) throw new UsageError(`give either --src or --plan-url, not both\n\n${RESTORE_USAGE}`);
    if (!values['plan-url'] || !values['plan-sha256'] || !values['data-dir']) throw new UsageError(`--plan-url, --plan-sha256 and --data-dir are required together\n\n${RESTORE_USAGE}`);
    // Not echoed: a presigned URL carries a signature.
    if (!URL.canParse(values['plan-url']) || !/^https?:$/.test(new URL(values['plan-url']).protocol)) {
      throw new UsageError('--plan-url is not an http:// or https:// URL: give the presigned URL of the restore plan, as the restore action wrote it into the init container');
    }
    if (!/^[0-9a-f]{64}$/i.test(values['plan-sha256'])) throw new UsageError(`--plan-sha256 ${JSON.stringify(values['plan-sha256'])} is not a SHA-256 (64 hex digits)`);
    // The plan's presigned URLs carry everything else: an S3 option here would look applied when it is not.
    const unused = givenStoreFlags(values, ['ca-cert-file', 'insecure-skip-tls-verify']);
    if (unused.length > 0) throw new UsageError(`${unused.join(', ')}: a restore from a plan reads through its presigned URLs and takes only --ca-cert-file and --insecure-skip-tls-verify of the S3 options`);
    const dataDir = values['data-dir'];
    let plan: RestorePlan | undefined;
    // The plan's restore and backup once it is read; never its URL.
    const known = () => ({ ...(plan ? { restore: plan.restore, backup: plan.backup } : {}), dataDir, verified: false });
    return jsonOnFailure(Boolean(values.json), known, () =>
      restoreFromPlan({
        planUrl: values['plan-url']!,
        planSha256: values['plan-sha256']!,
        dataDir,
        replace: Boolean(values.replace),
        directIo: values['direct-io'],
        maxBytesPerSecond: rate,
        chown,
        json: Boolean(values.json),
        tls: planTls(values, env),
        planRead: (read) => (plan = read),
      }),
    );
  }
  if (!values.src || !values['data-dir']) throw new UsageError(`--src (or --plan-url) and --data-dir are required\n\n${RESTORE_USAGE}`);
  const { root, name } = splitBackupPath(values.src);
  const dataDir = values['data-dir'];
  // As the store names itself once it is open; until then as given.
  let backup = `${root}/${name}`;
  const res = await jsonOnFailure(Boolean(values.json), () => ({ backup, dataDir, verified: false }), async () => {
    const store = openStoreFromFlags(root, values);
    backup = `${store.location}/${name}`;
    const progress = progressPrinter(`restore ${name}`);
    const restored = await restoreBackup({
      store,
      name,
      dataDir,
      replace: Boolean(values.replace),
      directIo: values['direct-io'],
      ...(rate ? { maxBytesPerSecond: rate } : {}),
      ...(chown ? { chown } : {}),
      onProgress: (p) => progress.update(p),
      onWarning: warn,
    });
    progress.done();
    return restored;
  });
  printSummary(res, { backup }, backup, dataDir, Boolean(values.json));
  return 0;
}

function warn(message: string): void {
  process.stderr.write(`warning: ${message}\n`);
}
