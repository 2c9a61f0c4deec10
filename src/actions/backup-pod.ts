/**
 * BackupItemActionV2 on Victoria pods (design.md, Data flow, backup step 2). Runs between the pod's
 * pre and post hooks, synchronously: asks the companion for the recorded snapshot files, copies
 * what is unchanged since the workload's newest complete backup server-side, streams the rest
 * from the companion (tar over exec) into the bucket, writes the manifest and the complete marker,
 * and returns the pod with a record of where its data went. Any failure fails the item with a
 * message naming the pod and what to do; the engine never marks a partial backup complete.
 */
import { pendingCounts, removalNote, writeBackup } from '../engine/backup.js';
import { newestComplete } from '../engine/catalog.js';
import { copiesRefusedText } from '../engine/manifest.js';
import { formatBytes, type Progress } from '../engine/progress.js';
import { tarFileReader } from '../engine/tar-reader.js';
import { KubeClient } from '../kube/client.js';
import type { ActionContext, BackupExecuteResult, ItemInput, KubeObject } from '../velero/types.js';
import { CompanionClient } from './companion-client.js';
import { loadPluginConfig } from './plugin-config-source.js';
import { COUNTS_LABEL, KIND_LABEL } from './names.js';
import { encodeRecord, RECORD_ANNOTATION, workloadPrefix, type BackupRecord } from './record.js';
import { openLocationStore } from './storage.js';
import { backupToAct, type VeleroBackupInfo } from './velero-backup.js';
import { checkSoleWriter, controllerOf, workloadOf } from './workload.js';

/** A snapshot recorded this long before the backup started belongs to an earlier backup (clock skew allowed). */
const STALE_RECORD_MS = 5 * 60_000;

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
  // Every error of this item starts the same way, so that one search of the backup log finds them all.
  const notBackedUp = (message: string) => new Error(`${podId}: Victoria data NOT backed up in ${backup.name}: ${message}`);
  const kind = pod.metadata?.labels?.[KIND_LABEL];
  if (kind !== 'metrics' && kind !== 'logs') {
    throw notBackedUp(`label ${KIND_LABEL} is ${JSON.stringify(kind)}; set it to metrics or logs`);
  }
  const status = (pod as { status?: { phase?: string; reason?: string } }).status;
  if (status?.phase === 'Succeeded' || status?.phase === 'Failed') {
    // A pod that has ended (evicted, often, on a node whose disk the hostPath data fills) has no
    // companion to exec into, and Velero does not restore it either. Its workload's running pod is
    // backed up in its place, and the workload check fails the workload if none is; a bare pod
    // has no such check, hence the warning.
    const owned = controllerOf(pod.metadata as Parameters<typeof controllerOf>[0]) !== undefined;
    const text = `${podId}: phase ${status.phase}${status.reason ? ` (${status.reason})` : ''}, nothing runs in it: not backed up` +
      (owned ? "; its workload's running pod is" : '; start it again and back up again');
    ctx.log[owned ? 'info' : 'warn'](text, { namespace, name: podName, backup: backup.name });
    return undefined;
  }
  const kube = KubeClient.load();
  const config = await loadPluginConfig(kube, backup.veleroNamespace).catch((err: unknown) => {
    throw notBackedUp((err as Error).message);
  });
  const containers = ((pod as { spec?: PodSpecLike }).spec?.containers ?? []).map((c) => c.name);
  if (!containers.includes(config.companionContainer)) {
    throw notBackedUp(
      `the pod has no container "${config.companionContainer}" (it has ${containers.join(', ') || 'none'}): add the companion sidecar (velero/components/) ` +
        'or set companionContainer in the plugin ConfigMap',
    );
  }
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new Error(`the backup took longer than itemTimeoutSeconds (${config.itemTimeoutMs / 1000} s) and was stopped`)),
    config.itemTimeoutMs,
  );
  try {
    return await backupPod({ ctx, kube, backup, pod, kind, podId, config, signal: controller.signal });
  } catch (err) {
    // On a timeout, its own words, and what the failed attempt's clean-up did.
    throw notBackedUp(controller.signal.aborted ? `${(controller.signal.reason as Error).message}${removalNote(err)}` : (err as Error).message);
  } finally {
    clearTimeout(timer);
  }
}

interface BackupPodRequest {
  ctx: ActionContext;
  kube: KubeClient;
  backup: VeleroBackupInfo;
  pod: KubeObject;
  kind: 'metrics' | 'logs';
  podId: string;
  config: Awaited<ReturnType<typeof loadPluginConfig>>;
  signal: AbortSignal;
}

async function backupPod(r: BackupPodRequest): Promise<{ item: KubeObject }> {
  const { ctx, kube, backup, pod, config, podId, signal } = r;
  const namespace = pod.metadata!.namespace!;
  const fields = { namespace, name: pod.metadata!.name!, backup: backup.name };
  const companion = new CompanionClient({
    kube,
    namespace,
    pod: pod.metadata!.name!,
    container: config.companionContainer,
    execTimeoutMs: config.execTimeoutMs,
    streamIdleTimeoutMs: config.streamIdleTimeoutMs,
    countTimeoutMs: config.countTimeoutMs,
    signal,
  });
  // The companion's file list (an exec: a process start in the pod) is fetched while the API
  // reads below run, and the base backup is looked up beside the exec calls (the label's kind is
  // checked against the companion's below). Both are observed at once, as either may fail first.
  const recorded = companion.files();
  recorded.catch(() => undefined);
  const workload = await workloadOf(kube, pod);
  await checkSoleWriter(kube, pod, workload);
  const location = await openLocationStore({
    kube,
    namespace: backup.veleroNamespace,
    location: backup.storageLocation,
    prefixOf: (bslPrefix) => workloadPrefix(bslPrefix, namespace, workload.folder),
    write: true,
  });
  const baseLookup = newestComplete(location.store, '', (m) => m.kind === r.kind);
  baseLookup.catch(() => undefined);
  let ranPre = false;
  try {
    for (const warning of location.warnings) ctx.log.warn(warning, fields);
    let files = await recorded;
    if (files && backup.startedAt && Date.parse(files.createdAt) < backup.startedAt.getTime() - STALE_RECORD_MS) {
      ctx.log.warn(`${podId}: the recorded snapshots (${files.createdAt}) are older than backup ${backup.name}: an earlier backup's post hook did not run`, fields);
      files = undefined;
    }
    if (!files) {
      if (!config.runHooksIfMissing) {
        throw new Error(`no snapshot was recorded by a pre hook: add the hook annotations (velero/components/) or the Schedule's hooks, or set runHooksIfMissing to true`);
      }
      ctx.log.warn(`${podId}: no pre hook made snapshots for this backup; running the companion's hooks from the plugin (add the hook annotations: velero/components/)`, fields);
      ranPre = true;
      logHook(ctx, `${podId}: pre hook`, await companion.hook('pre'), fields);
      files = await companion.files();
      if (!files) throw new Error('the companion recorded no snapshot after its pre hook ran');
    }
    if (files.kind !== r.kind) {
      throw new Error(`the companion backs up ${files.kind} but the pod's label ${KIND_LABEL} says ${r.kind}: fix the label or the companion's VICTORIA_KIND`);
    }
    if (files.droppedByRetention) {
      ctx.log.info(`${podId}: the database's retention dropped the partition(s) of snapshot(s) ${files.droppedByRetention.join(', ')} since the pre hook: their data is gone, and not in this backup`, fields);
    }
    // Counted while the files upload: the count reads the whole database and is not needed before the manifest.
    const counting = countingDecision(backup, config.counts);
    if (counting.warning) ctx.log.warn(`${podId}: ${counting.warning}`, fields);
    if (!counting.count) ctx.log.info(`${podId}: not counted for drills (${counting.why}): a restore drill of this backup checks checksums only`, fields);
    const counted = counting.count ? pendingCounts(companion.counts()) : { counts: {} };
    const base = await baseLookup;
    const trees = files.trees.map((t) => ({
      prefix: t.prefix,
      restoreTo: t.restoreTo,
      files: t.files,
      reader: tarFileReader((list, sig) => companion.tar(t.prefix, list, sig), { streams: config.streams, signal }),
    }));
    const started = Date.now();
    let lastLog = started;
    const describe = (p: Progress) =>
      `${p.filesDone}/${p.filesTotal} files, ${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)} (${formatBytes(p.bytesUploaded)} uploaded, ${formatBytes(p.bytesCopied)} copied server-side), ` +
      `${formatBytes(p.bytesDone / Math.max((Date.now() - started) / 1000, 0.001))}/s`;
    ctx.log.info(
      `${podId}: backing up ${files.kind} snapshot ${files.snapshots.join(', ')} of ${workload.id} to s3://${location.bucket}/${location.prefix}/${backup.name}/` +
        (base ? ` (unchanged files copied from ${base.name})` : ' (full)'),
      fields,
    );
    const manifest = await writeBackup({
      store: location.store,
      name: backup.name,
      kind: files.kind,
      trees,
      source: { url: files.url, ...(files.version ? { version: files.version } : {}), snapshots: files.snapshots },
      counted,
      createdAt: new Date(files.createdAt),
      ...(base ? { base } : {}),
      concurrency: config.uploadConcurrency,
      removeOnFailure: true,
      ...(config.maxBytesPerSecond > 0 ? { maxBytesPerSecond: config.maxBytesPerSecond } : {}),
      onProgress: (p) => {
        if (Date.now() - lastLog < config.progressIntervalMs) return;
        lastLog = Date.now();
        ctx.log.info(`${podId}: ${p.phase}: ${describe(p)}`, fields);
      },
    });
    if (manifest.copiesRefused) ctx.log.warn(`${podId}: ${copiesRefusedText(manifest.copiesRefused)}`, fields);
    if (manifest.countsError) {
      ctx.log.warn(
        `${podId}: the data is backed up, but the database could not count it (${manifest.countsError}); a restore drill of this backup checks checksums only. ` +
          'Raise the database\'s query limits (-search.maxQueryDuration, -search.maxSamplesPerQuery) or countTimeoutSeconds',
        fields,
      );
    }
    ctx.log.info(
      `${podId}: backup complete: ${manifest.totals.files} files, ${formatBytes(manifest.totals.bytes)} (${formatBytes(manifest.totals.bytesUploaded)} uploaded, ` +
        `${formatBytes(manifest.totals.bytesCopied)} copied server-side) in ${manifest.durationSeconds.toFixed(1)} s, SHA-256 of every file recorded`,
      fields,
    );
    const record: BackupRecord = {
      format: 'velero-plugin-victoria/record/v1',
      storageLocation: backup.storageLocation,
      bucket: location.bucket,
      prefix: location.prefix,
      name: backup.name,
      kind: files.kind,
      workload: workload.id,
      files: manifest.totals.files,
      bytes: manifest.totals.bytes,
    };
    const metadata = pod.metadata!;
    return { item: { ...pod, metadata: { ...metadata, annotations: { ...(metadata.annotations ?? {}), [RECORD_ANNOTATION]: encodeRecord(record) } } } };
  } finally {
    if (ranPre) {
      // Our own pre hook made the snapshots, so ours is the post hook that removes them, success or not.
      await companion
        .hook('post', AbortSignal.timeout(config.execTimeoutMs))
        .then((summary) => logHook(ctx, `${podId}: post hook`, summary, fields))
        .catch((err: unknown) => ctx.log.error(`${podId}: post hook failed, snapshots may be left behind: ${(err as Error).message}`, fields));
    }
    await location.close();
  }
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
