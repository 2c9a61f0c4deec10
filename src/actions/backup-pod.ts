/**
 * BackupItemActionV2 on Victoria pods (docs/velero-backup.md, "How a backup flows", step 2). Runs
 * between the pod's pre and post hooks, synchronously: asks the companion for the recorded snapshot
 * files, copies what is unchanged since the workload's newest complete backup server-side, streams
 * the rest from the companion (tar over exec) into the bucket, writes the manifest and the complete
 * marker, and returns the pod with a record of where its data went. Any failure fails the item with
 * a message naming the pod and what to do; the engine never marks a partial backup complete.
 */
import type { CompanionFiles } from '../companion/protocol.js';
import { pendingCounts, writeBackup, type BackupCounts, type BaseBackup } from '../engine/backup.js';
import { attemptNote } from '../engine/backup-folder.js';
import { failedAttempts, newestComplete, type FailedAttempt } from '../engine/catalog.js';
import { copiesRefusedText, type Manifest } from '../engine/manifest.js';
import { formatBytes, recentRate, type Progress, type ProgressListener } from '../engine/progress.js';
import { tarFileReader } from '../engine/tar-reader.js';
import { KubeClient } from '../kube/client.js';
import { Semaphore } from '../store/pool.js';
import { RetryReporter } from '../store/retry-report.js';
import { logRef } from '../velero/items.js';
import type { ActionContext, BackupExecuteResult, ItemInput, KubeObject } from '../velero/types.js';
import { isSourceKind } from '../victoria/types.js';
import { CompanionClient } from './companion-client.js';
import { removeFinishedAttempts } from './failed-attempts.js';
import { loadPluginConfig } from './plugin-config-source.js';
import { COUNTS_LABEL, KIND_LABEL } from './names.js';
import { dataSubdirOf, encodeRecord, RECORD_ANNOTATION, RECORD_FORMAT, workloadPrefix, type BackupRecord } from './record.js';
import { DATA_MOUNT, findDataVolume, type Pod } from './pod-spec.js';
import { podReferences } from './pod-references.js';
import { withoutRestoreContainer } from './restore-spec.js';
import { openLocationStore, type LocationStore } from './storage.js';
import { backupToAct, type VeleroBackupInfo } from './velero-backup.js';
import { checkSoleWriter, controllerOf, workloadOf, type Workload } from './workload.js';

/** A snapshot recorded this long before the backup started belongs to an earlier backup (clock skew allowed). */
const STALE_RECORD_MS = 5 * 60_000;

/**
 * The pods' backups this plugin process runs at once. Velero starts one plugin process per backup
 * and, with more than one item-block worker (`--item-block-worker-count`), calls it for several
 * pods at the same time; each pod's backup holds its own part buffers and tar streams (about
 * 170 MiB at its peak), all in Velero's container and under its memory limit. So the backups
 * beyond maxParallelPodBackups wait, in order, rather than risk that limit. Made with the first
 * pod's ConfigMap: the limit applies from the next backup on when the ConfigMap changes, as every
 * other key does.
 */
let podBackupSlots: { limit: number; semaphore: Semaphore } | undefined;

interface PodSpecLike {
  containers?: Array<{ name?: string }>;
}

/** Execute of the pod backup action; see pod-backup.ts for why it is loaded lazily. */
export async function executePodBackup(
  input: ItemInput & { backup: Buffer },
  ctx: ActionContext,
): Promise<BackupExecuteResult | undefined> {
  const backup = backupToAct(input.backup);
  if (!backup) return undefined;
  const pod = input.item;
  const namespace = pod.metadata?.namespace ?? '';
  const podName = pod.metadata?.name ?? '';
  const podId = `pod ${namespace}/${podName}`;
  const fields = { namespace, name: podName, backup: logRef(backup) };
  // Every error of this item starts the same way, so that one search of the backup log finds them all.
  const notBackedUp = (message: string) => new Error(`${podId}: Victoria data NOT backed up in ${backup.name}: ${message}`);
  const kind = pod.metadata?.labels?.[KIND_LABEL];
  if (!isSourceKind(kind)) {
    throw notBackedUp(`label ${KIND_LABEL} is ${JSON.stringify(kind)}; set it to metrics or logs`);
  }
  const status = (pod as { status?: { phase?: string; reason?: string } }).status;
  if (status?.phase === 'Succeeded' || status?.phase === 'Failed') {
    // A pod that has ended (evicted, often, on a node whose disk the hostPath data fills) has no
    // companion to exec into, and Velero does not restore it either. A Deployment's running pod is
    // backed up in its place; a StatefulSet replica and a DaemonSet's pod on its node keep data of
    // their own, which nothing else holds. The workload check fails the workload in every case where
    // data is missing; a bare pod has no such check, hence the warning.
    const owner = controllerOf(pod.metadata);
    const instead = !owner
      ? '; start it again and back up again'
      : owner.kind === 'StatefulSet'
        ? `; this replica's data is missing from the backup, which the workload check reports for StatefulSet ${namespace}/${owner.name}`
        : owner.kind === 'DaemonSet'
          ? `; unless the DaemonSet runs a new pod on its node, that node's data is missing from the backup, which the workload check reports for DaemonSet ${namespace}/${owner.name}`
          : "; its workload's running pod is backed up instead";
    const text = `${podId}: phase ${status.phase}${status.reason ? ` (${status.reason})` : ''}, nothing runs in it: not backed up${instead}`;
    ctx.log[owner ? 'info' : 'warn'](text, fields);
    // Velero still stores the pod's manifest: without an earlier restore's init container and its signed URL.
    const stored = withoutRestoreContainer(pod as Pod);
    return stored === pod ? undefined : { item: stored };
  }
  let kube: KubeClient;
  try {
    kube = KubeClient.load();
  } catch (err) {
    throw notBackedUp((err as Error).message);
  }
  const config = await loadPluginConfig(kube, backup.veleroNamespace, (level, message) => ctx.log[level](message, fields)).catch((err: unknown) => {
    throw notBackedUp((err as Error).message);
  });
  const containers = ((pod as { spec?: PodSpecLike }).spec?.containers ?? []).map((c) => c.name);
  if (!containers.includes(config.companionContainer)) {
    throw notBackedUp(
      `the pod has no container "${config.companionContainer}" (it has ${containers.join(', ') || 'none'}): add the companion sidecar (velero/components/) ` +
        'or set companionContainer in the plugin ConfigMap',
    );
  }
  // A restore finds the data volume through the companion's mount, in the pod as this backup
  // records it: without that mount no Velero restore of this backup can put the data back, and a
  // fix of the pod later does not change the backed-up copy. Said now, not in a disaster recovery.
  try {
    findDataVolume(pod as Pod, config.companionContainer, podId);
  } catch (err) {
    ctx.log.warn(
      `${(err as Error).message}. The data is backed up, but a Velero restore of backup ${backup.name} cannot place it: ` +
        'restore it by hand with `velero-plugin-victoria restore` (docs/cli.md), and fix the pod for the next backups',
      fields,
    );
  }
  const slots = (podBackupSlots ??= { limit: config.maxParallelPodBackups, semaphore: new Semaphore(config.maxParallelPodBackups) });
  if (!slots.semaphore.tryAcquire()) {
    ctx.log.info(
      `${podId}: waiting for another pod's backup to finish: this plugin process backs up ${slots.limit} pod(s) at once ` +
        '(maxParallelPodBackups in the plugin ConfigMap; each more needs about 170 MiB more of the Velero container\'s memory)',
      fields,
    );
    await slots.semaphore.acquire();
  }
  // The item's time limit starts with its own work, not with the wait for a slot.
  const controller = new AbortController();
  // A paced upload that needs longer fails the same way every time: the message names the pace.
  const paced =
    config.maxBytesPerSecond > 0
      ? `; uploads were capped at maxBytesPerSecond ${formatBytes(config.maxBytesPerSecond)}/s, so at most ${formatBytes((config.maxBytesPerSecond * config.itemTimeoutMs) / 1000)} could go up in that time: ` +
        'if the backup needed more, raise itemTimeoutSeconds or maxBytesPerSecond in the plugin ConfigMap'
      : '';
  const timer = setTimeout(
    () => controller.abort(new Error(`the backup took longer than itemTimeoutSeconds (${config.itemTimeoutMs / 1000} s) and was stopped${paced}`)),
    config.itemTimeoutMs,
  );
  try {
    return await backupPod({ ctx, kube, backup, pod, kind, podId, fields, config, signal: controller.signal });
  } catch (err) {
    throw notBackedUp(failureText(err, controller.signal));
  } finally {
    clearTimeout(timer);
    // A failed backup does not wait for its count (writeBackup gives up on it): ending the item's
    // execs here stops `companion counts` from scanning the database for up to countTimeoutSeconds
    // beside the next pod's backup. After a success every exec has ended already.
    controller.abort(new Error('the pod backup ended'));
    slots.semaphore.release();
  }
}

/**
 * What failed the item. A timeout in its own words, with what the failed attempt's clean-up did;
 * a failure of its own that the time limit overtook during the clean-up (the post hook, the removal
 * of the attempt) keeps its message beside the timeout's, so that the cause is not lost.
 */
export function failureText(err: unknown, signal: AbortSignal): string {
  const message = err instanceof Error ? err.message : String(err);
  if (!signal.aborted) return message;
  const timeout = (signal.reason as Error).message;
  if (err === signal.reason || message.includes(timeout)) return `${timeout}${attemptNote(err)}`;
  return `${timeout}; the error it ended with: ${message}`;
}

interface BackupPodRequest {
  ctx: ActionContext;
  kube: KubeClient;
  backup: VeleroBackupInfo;
  pod: KubeObject;
  kind: 'metrics' | 'logs';
  podId: string;
  /** The pod's namespace and name, and the backup's name: the fields of every log line of this item. */
  fields: { namespace: string; name: string; backup: string };
  config: Awaited<ReturnType<typeof loadPluginConfig>>;
  signal: AbortSignal;
}

/**
 * What the log says of the backups passed over as the base (newestComplete's onUnreadable): one
 * line per kind, however many (a location whose credentials may not read at all has dozens).
 * Backups a lifecycle rule archived are a setup, not a fault: a warning in every backup would
 * teach people to ignore the warnings; unless no readable backup is left to copy from.
 */
export function passedOverLines(podId: string, unreadable: string[], archived: string[], baseFound: boolean): Array<{ level: 'info' | 'warn'; text: string }> {
  const lines: Array<{ level: 'info' | 'warn'; text: string }> = [];
  if (unreadable.length > 0) {
    lines.push({ level: 'warn', text: `${podId}: ${unreadable.length} backup(s) of this workload cannot be read, passed over as the base of this backup and not restorable from here: ${unreadable.join('; ')}` });
  }
  if (archived.length > 0) {
    const text = `${podId}: ${archived.length} backup(s) of this workload are in an archive storage class (a lifecycle rule), passed over as the base of this backup; restoring one needs S3 RestoreObject first: ${archived.join('; ')}`;
    lines.push(baseFound ? { level: 'info', text } : { level: 'warn', text: `${text}. No readable backup is left to copy from, so this one uploads everything: keep lifecycle transitions off the newest backups` });
  }
  return lines;
}

/** One pod's backup under way: its request and the companion to exec into. */
interface PodBackup extends BackupPodRequest {
  companion: CompanionClient;
  /**
   * Set before the plugin runs the companion's pre hook itself: from then on the snapshots may be
   * ours, so the post hook that removes them is ours to run too, even when the pre hook failed.
   */
  ranPre: boolean;
}

/** Where one backup's data comes from and goes to. */
interface BackupTarget {
  files: CompanionFiles;
  workload: Workload;
  location: LocationStore;
}

async function backupPod(r: BackupPodRequest): Promise<BackupExecuteResult> {
  const { kube, backup, pod } = r;
  const { namespace } = r.fields;
  const b: PodBackup = { ...r, companion: companionOf(r), ranPre: false };
  // The companion's file list (an exec: a process start in the pod) is fetched while the API
  // reads below run, and the base backup is looked up beside the exec calls (the label's kind is
  // checked against the companion's below). Both are observed at once, as either may fail first.
  const recorded = b.companion.files();
  recorded.catch(() => undefined);
  const workload = await workloadOf(kube, pod);
  await checkSoleWriter(kube, pod, workload);
  // A backup that the bucket throttled is slow for a reason: said at info, at most every 10 s per reason.
  const retries = new RetryReporter((line) => b.ctx.log.info(`${b.podId}: ${line}`, b.fields));
  const location = await openLocationStore({
    kube,
    namespace: backup.veleroNamespace,
    location: backup.storageLocation,
    prefixOf: (bslPrefix) => workloadPrefix(bslPrefix, namespace, workload.folder),
    write: true,
    onRetry: retries.onRetry,
  });
  const unreadable: string[] = [];
  const archived: string[] = [];
  const incomplete: string[] = [];
  const passOver = (name: string, why: string, isArchived: boolean) => (isArchived ? archived : unreadable).push(`${name} (${why})`);
  // Bound to the item's signal, which also ends when the item does: a lookup still running then
  // (the file list failed first) stops instead of reading on into a closed client.
  const catalog = location.store.withSignal(r.signal);
  const baseLookup = newestComplete(catalog, '', { accept: (m) => m.kind === r.kind, onUnreadable: passOver, onIncomplete: (name) => incomplete.push(name) }).then((base) => {
    for (const line of passedOverLines(b.podId, unreadable, archived, base !== undefined)) b.ctx.log[line.level](line.text, b.fields);
    return base;
  });
  // The failed attempts among the folders the lookup found incomplete (failed-attempts.ts).
  // Only a saving: a store that fails it fails the base lookup, or the upload, for itself.
  const attemptsLookup = baseLookup.then(() =>
    failedAttempts(catalog, incomplete.filter((name) => name !== backup.name), r.kind).catch((err: unknown): FailedAttempt[] => {
      b.ctx.log.warn(`${b.podId}: the workload's failed earlier backups could not be looked up (${(err as Error).message}): nothing of theirs is taken over or removed this time`, b.fields);
      return [];
    }),
  );
  attemptsLookup.catch(() => undefined);
  let manifest: Manifest | undefined;
  try {
    for (const warning of location.warnings) b.ctx.log.warn(warning, b.fields);
    const target: BackupTarget = { files: await snapshotFiles(b, recorded), workload, location };
    const counted = startCounting(b);
    const attempts = await attemptsLookup;
    manifest = await writeSnapshots(b, target, counted, { base: await baseLookup, attempts });
    logOutcome(b, manifest, retries.summary());
    await removeAttempts(b, location, attempts);
    const metadata = pod.metadata ?? {};
    const annotations = { ...(metadata.annotations ?? {}), [RECORD_ANNOTATION]: encodeRecord(backupRecord(b, target, manifest)) };
    // What the pod cannot start without goes into the backup with it, whatever the Backup's label
    // selector (a Schedule's selects the Victoria objects only): a restore on a new cluster needs it.
    return { item: withoutRestoreContainer({ ...pod, metadata: { ...metadata, annotations } }), additionalItems: podReferences(pod as Pod, namespace, 'required') };
  } finally {
    // A failed backup has no summary line to count its retries in.
    if (!manifest) retries.end();
    if (b.ranPre) await runOwnPostHook(b);
    await location.close();
  }
}

/** Every exec of this backup goes to the pod's companion, within the plugin ConfigMap's timeouts and the item's signal. */
function companionOf(r: BackupPodRequest): CompanionClient {
  const { kube, fields, config, signal } = r;
  return new CompanionClient({
    kube,
    namespace: fields.namespace,
    pod: fields.name,
    container: config.companionContainer,
    execTimeoutMs: config.execTimeoutMs,
    streamIdleTimeoutMs: config.streamIdleTimeoutMs,
    countTimeoutMs: config.countTimeoutMs,
    fileListLimitMiB: config.fileListLimitMiB,
    signal,
  });
}

/**
 * The snapshots to back up: the ones the pre hook recorded for this backup, else the ones the
 * companion's own hooks make now (runHooksIfMissing). The companion's kind must be the label's,
 * which decides what the backup is restored as.
 */
async function snapshotFiles(b: PodBackup, recorded: Promise<CompanionFiles | undefined>): Promise<CompanionFiles> {
  const files = unlessStale(b, await recorded) ?? (await filesFromOwnPreHook(b));
  if (files.kind !== b.kind) {
    throw new Error(`the companion backs up ${files.kind} but the pod's label ${KIND_LABEL} says ${b.kind}: fix the label or the companion's VICTORIA_KIND`);
  }
  if (files.droppedByRetention) {
    b.ctx.log.info(
      `${b.podId}: the database's retention dropped the partition(s) of snapshot(s) ${files.droppedByRetention.join(', ')} since the pre hook: their data is gone, and not in this backup`,
      b.fields,
    );
  }
  return files;
}

/** Snapshots recorded well before this backup started are an earlier backup's, left when its post hook did not run: not these. */
function unlessStale(b: PodBackup, files: CompanionFiles | undefined): CompanionFiles | undefined {
  const { backup } = b;
  if (files && backup.startedAt && Date.parse(files.createdAt) < backup.startedAt.getTime() - STALE_RECORD_MS) {
    b.ctx.log.warn(`${b.podId}: the recorded snapshots (${files.createdAt}) are older than backup ${backup.name}: an earlier backup's post hook did not run`, b.fields);
    return undefined;
  }
  return files;
}

/** No pre hook made snapshots: the plugin runs the companion's pre hook itself, if the ConfigMap allows it, rather than fail the item. */
async function filesFromOwnPreHook(b: PodBackup): Promise<CompanionFiles> {
  const { ctx, podId, companion, fields } = b;
  if (!b.config.runHooksIfMissing) {
    throw new Error(`no snapshot was recorded by a pre hook of this backup (none, or only an earlier backup's: see the warning above): add the hook annotations (velero/components/) or the Schedule's hooks, or set runHooksIfMissing to true`);
  }
  ctx.log.warn(`${podId}: no pre hook made snapshots for this backup; running the companion's hooks from the plugin (add the hook annotations: velero/components/)`, fields);
  b.ranPre = true;
  logHook(ctx, `${podId}: pre hook`, await companion.hook('pre'), fields);
  const files = await companion.files();
  if (!files) throw new Error('the companion recorded no snapshot after its pre hook ran');
  return files;
}

/** Counted while the files upload: the count reads the whole database and is not needed before the manifest. */
function startCounting(b: PodBackup): BackupCounts | Promise<BackupCounts> {
  const { ctx, podId, fields } = b;
  const counting = countingDecision(b.backup, b.config.counts);
  if (counting.warning) ctx.log.warn(`${podId}: ${counting.warning}`, fields);
  if (!counting.count) ctx.log.info(`${podId}: not counted for drills (${counting.why}): a restore drill of this backup checks checksums only`, fields);
  return counting.count ? pendingCounts(b.companion.counts()) : { counts: {} };
}

/**
 * Writes the backup: each tree's files streamed from the companion (tar over exec) or, when
 * unchanged since `base` or finished by the newest failed attempt, copied server-side. A failed
 * backup keeps the files it finished for the next one (failed-attempts.ts), or, with none, removes
 * what it wrote, since no Velero delete ever runs for an item that failed.
 */
async function writeSnapshots(
  b: PodBackup,
  t: BackupTarget,
  counted: BackupCounts | Promise<BackupCounts>,
  earlier: { base: BaseBackup | undefined; attempts: FailedAttempt[] },
): Promise<Manifest> {
  const { backup, config, podId, companion, fields } = b;
  const { files, location } = t;
  const trees = files.trees.map((tree) => ({
    prefix: tree.prefix,
    restoreTo: tree.restoreTo,
    files: tree.files,
    reader: tarFileReader((list, sig) => companion.tar(tree, list, sig), { streams: config.streams, signal: b.signal }),
  }));
  const onProgress = progressLogger(b);
  const { base } = earlier;
  const resumeFrom = earlier.attempts.find((a) => a.journaled)?.name;
  b.ctx.log.info(
    `${podId}: backing up ${files.kind} snapshot ${files.snapshots.join(', ')} of ${t.workload.id} to s3://${location.bucket}/${location.prefix}/${backup.name}/` +
      (base ? ` (unchanged files copied from ${base.name})` : ' (full)') +
      (resumeFrom ? `; what the failed backup ${resumeFrom} finished is copied from its folder` : ''),
    fields,
  );
  return writeBackup({
    store: location.store,
    name: backup.name,
    kind: files.kind,
    trees,
    source: { url: files.url, ...(files.version ? { version: files.version } : {}), snapshots: files.snapshots },
    counted,
    createdAt: new Date(files.createdAt),
    ...(base ? { base } : {}),
    ...(resumeFrom ? { resumeFrom } : {}),
    concurrency: config.uploadConcurrency,
    onFailure: 'keep-journaled',
    signal: b.signal,
    ...(config.maxBytesPerSecond > 0 ? { maxBytesPerSecond: config.maxBytesPerSecond } : {}),
    onProgress,
  });
}

/**
 * A progress line every progressIntervalMs (the engine reports every second besides each file), so
 * that a long upload shows it moves, or that it stalled, without flooding the backup log. The rate
 * is the upload's over the last interval: copies take no bandwidth, and an average since the start
 * would hide a stall.
 */
export function progressLogger(b: Pick<PodBackup, 'config' | 'ctx' | 'podId' | 'fields'>): ProgressListener {
  const started = Date.now();
  let lastLog = started;
  const rate = recentRate(started);
  const describe = (p: Progress) =>
    `${p.filesDone}/${p.filesTotal} files, ${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)} (${formatBytes(p.bytesUploaded)} uploaded, ${formatBytes(p.bytesCopied)} copied server-side), ` +
    `uploading at ${formatBytes(rate(p))}/s`;
  return (p) => {
    if (Date.now() - lastLog < b.config.progressIntervalMs) return;
    lastLog = Date.now();
    const waiting = p.phase === 'counting' ? ` (waiting for the database's count; countTimeoutSeconds: ${b.config.countTimeoutMs / 1000})` : '';
    b.ctx.log.info(`${b.podId}: ${p.phase}${waiting}: ${describe(p)}`, b.fields);
  };
}

/**
 * The written backup in the log: what is complete, with its S3 retries if any (RetryReporter's
 * summary), and the warnings of what it could not do (copies, counts).
 */
function logOutcome(b: PodBackup, manifest: Manifest, retries: string | undefined): void {
  const { ctx, podId, fields } = b;
  if (manifest.copiesRefused) ctx.log.warn(`${podId}: ${copiesRefusedText(manifest.copiesRefused)}`, fields);
  if (manifest.countsError) {
    ctx.log.warn(
      `${podId}: the data is backed up, but the database could not count it (${manifest.countsError}); a restore drill of this backup checks checksums only. ` +
        'Raise the database\'s query limits (-search.maxQueryDuration, -search.maxSamplesPerQuery) or countTimeoutSeconds',
      fields,
    );
  }
  const taken = manifest.resumedFrom;
  ctx.log.info(
    `${podId}: backup complete: ${manifest.totals.files} files, ${formatBytes(manifest.totals.bytes)} (${formatBytes(manifest.totals.bytesUploaded)} uploaded, ` +
      `${formatBytes(manifest.totals.bytesCopied)} copied server-side` +
      (taken ? `, of which ${taken.files} files (${formatBytes(taken.bytes)}) from the failed backup ${taken.backup}` : '') +
      `) in ${manifest.durationSeconds.toFixed(1)} s, SHA-256 of every file recorded` +
      (retries ? `; S3 retries: ${retries}` : ''),
    fields,
  );
}

/**
 * Once this backup is complete, the folders of the workload's failed attempts go (failed-attempts.ts),
 * those whose Velero backup is finished; what is left is said, never failing the complete backup.
 */
async function removeAttempts(b: PodBackup, location: LocationStore, attempts: FailedAttempt[]): Promise<void> {
  if (attempts.length === 0) return;
  const { ctx, podId, fields } = b;
  const done = await removeFinishedAttempts(location.store.withSignal(b.signal), location.veleroBackups.withSignal(b.signal), attempts);
  for (const r of done.removed) {
    ctx.log.info(`${podId}: removed the folder of the failed backup ${r.name} (${r.objects} objects, ${formatBytes(r.bytes)}), which held no complete backup`, fields);
  }
  for (const name of done.unfinished) {
    ctx.log.info(
      `${podId}: the folder of the failed backup ${name} stays until Velero is done with that backup (no ${location.veleroBackups.location}/${name}/velero-backup.json yet): ` +
        'a later backup of this workload removes it then, or prune once Velero has deleted the backup',
      fields,
    );
  }
  for (const f of done.failed) {
    ctx.log.warn(`${podId}: the folder of the failed backup ${f.name} was not removed (${f.error}): it holds no complete backup; the next backup of this workload tries again`, fields);
  }
}

/** Where the pod's data went, for the restore action: it reads this record from the backed-up pod. */
function backupRecord(b: PodBackup, t: BackupTarget, manifest: Manifest): BackupRecord {
  const dataSubdir = dataSubdirOf(t.files.dataDir, DATA_MOUNT);
  return {
    format: RECORD_FORMAT,
    storageLocation: b.backup.storageLocation,
    bucket: t.location.bucket,
    prefix: t.location.prefix,
    name: b.backup.name,
    kind: t.files.kind,
    workload: t.workload.id,
    files: manifest.totals.files,
    bytes: manifest.totals.bytes,
    ...(dataSubdir ? { dataSubdir } : {}),
  };
}

/**
 * Our own pre hook made the snapshots, so ours is the post hook that removes them, success or not.
 * It gets its own timeout, as the item's signal may be what stopped the backup; a failure is
 * logged, never thrown over the backup's own outcome.
 */
async function runOwnPostHook(b: PodBackup): Promise<void> {
  const { ctx, podId, fields } = b;
  await b.companion
    .hook('post', AbortSignal.timeout(b.config.execTimeoutMs))
    .then((summary) => logHook(ctx, `${podId}: post hook`, summary, fields))
    .catch((err: unknown) => ctx.log.error(`${podId}: post hook failed, snapshots may be left behind: ${(err as Error).message}`, fields));
}

/** A hook's JSON summary line in the backup log: a warning when it carries one (snapshots it had to leave). */
function logHook(ctx: ActionContext, what: string, summary: string, fields: Record<string, string>): void {
  let warning: unknown;
  try {
    warning = (JSON.parse(summary) as { warning?: unknown }).warning;
  } catch {
    // Not JSON: logged as it is.
  }
  if (typeof warning === 'string') ctx.log.warn(`${what}: ${warning}`, fields);
  else ctx.log.info(`${what}: ${summary}`, fields);
}

/** Whether to count: the Backup's counts label when it is `true` or `false`, otherwise the plugin ConfigMap's `counts`. */
function countingDecision(backup: VeleroBackupInfo, configured: boolean): { count: boolean; why: string; warning?: string } {
  const label = backup.countsLabel;
  if (label === 'true' || label === 'false') return { count: label === 'true', why: `backup label ${COUNTS_LABEL}=${label}` };
  const why = `plugin ConfigMap counts: "${configured}"`;
  if (label === undefined) return { count: configured, why };
  return {
    count: configured,
    why,
    warning: `backup ${backup.name} has label ${COUNTS_LABEL}=${JSON.stringify(label)}, which is neither "true" nor "false": it is ignored, and the plugin ConfigMap's counts (${configured}) decides`,
  };
}
