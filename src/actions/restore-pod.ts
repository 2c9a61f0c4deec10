/**
 * RestoreItemActionV2 on Victoria pods (docs/velero-restore.md, "How a restore flows"). For a pod whose backed-up
 * JSON carries the backup record: writes a restore plan (presigned GET URLs of every object of the
 * backup) into the bucket, presigns the plan's own URL, and returns the pod with the
 * `victoria-restore` init container, which fills the data volume before the database starts.
 * The plan URL is all the init container gets: no credentials and no Secret reach the pod's
 * namespace. For a drill (the Restore maps the pod's namespace elsewhere) the data volume's
 * hostPath is moved away from the production path and a post-restore hook compares the restored
 * counts with the counts at backup time. Pods without a record pass through unchanged.
 */
import { KubeClient } from '../kube/client.js';
import { logRef, parseItemFromBackup } from '../velero/items.js';
import type { ActionContext, ItemInput, KubeObject, RestoreExecuteResult } from '../velero/types.js';
import { MAX_PLAN_EXPIRY_SECONDS } from '../engine/plan.js';
import { formatBytes } from '../engine/progress.js';
import type { PluginConfig } from './plugin-config.js';
import { loadPluginConfig } from './plugin-config-source.js';
import { readRecord, RECORD_ANNOTATION, recordedWorkloadFolder, type BackupRecord } from './record.js';
import { databaseImage, databaseRetention, drillPod, drillVerifyHost, RESTORE_HOOK, verifyHookAnnotations } from './drill-spec.js';
import { olderDatabaseProblem } from './database-version.js';
import { DATA_MOUNT, describeVolume, findDataVolume, withVolume, type Pod, type Volume, type VolumeMount } from './pod-spec.js';
import { lockedDown, restoreContainer, restoreIdentity, withInitContainer } from './restore-spec.js';
import { restorePlanOf } from './restore-container.js';
import { restoreOperationId } from './restore-operation.js';
import { podClaims, podReferences } from './pod-references.js';
import { restoreConflicts, RUNBOOK } from './restore-conflicts.js';
import { makeRestorePlan, PLAN_FOLDER, removeExpiredPlans, type MadeRestorePlan } from './restore-plan.js';
import { pluginImage } from './plugin-image.js';
import { openBackupLocation, type BackupLocation } from './restore-location.js';
import { parseVeleroRestore, targetNamespace, type VeleroRestoreInfo } from './velero-restore.js';

/** How long `companion verify` waits for the restored database to answer; its count may take countTimeoutSeconds besides. */
const VERIFY_HEALTH_TIMEOUT_SECONDS = 600;

/** Execute of the pod restore action; see pod-restore.ts for why it is loaded lazily. */
export async function executePodRestore(
  input: ItemInput & { restore: Buffer; itemFromBackup: Buffer },
  ctx: ActionContext,
): Promise<RestoreExecuteResult | undefined> {
  const pod = input.item as Pod;
  const fromBackup = (parseItemFromBackup(input.itemFromBackup) as Pod | undefined) ?? pod;
  const namespace = fromBackup.metadata?.namespace ?? pod.metadata?.namespace ?? '';
  const podName = fromBackup.metadata?.name ?? pod.metadata?.name ?? '';
  const podId = `pod ${namespace}/${podName}`;
  let record: BackupRecord | undefined;
  try {
    record = readRecord(fromBackup.metadata?.annotations);
  } catch (err) {
    const restore = parseVeleroRestore(input.restore);
    throw new Error(`${podId}: its Victoria data cannot be restored by ${restore.name} from backup ${restore.backupName}: ${(err as Error).message}`);
  }
  const restore = parseVeleroRestore(input.restore);
  if (!record) {
    const target = targetNamespace(restore, namespace);
    if (target === namespace) {
      // Said where `velero restore logs` shows it: after a disaster, a database starting without its data is no detail.
      ctx.log.warn(
        `${podId}: no backup record on it (annotation ${RECORD_ANNOTATION}): its Victoria data is not in backup ${restore.backupName} ` +
          '(backed up before the plugin was installed, or not captured: see that backup\'s log), so the pod is restored unchanged and its database starts on whatever its data volume holds',
        { namespace, name: podName, restore: logRef(restore) },
      );
      return undefined;
    }
    warnOfClaims(ctx, fromBackup, podId, target, restore.name);
    return { item: await drillWithoutData(ctx, restore, pod, fromBackup, target, podId) };
  }
  try {
    const item = await restorePod({ ctx, kube: KubeClient.load(), restore, pod, fromBackup, record, namespace, podName, podId });
    const target = targetNamespace(restore, namespace);
    // Velero follows the init container's download as this action's operation (restore-operation.ts);
    // a pod that exists already is not restored, and gets no init container of this restore to follow.
    const planSha256 = restorePlanOf(item);
    const operation = planSha256 && planSha256 !== restorePlanOf(pod) ? { operationID: restoreOperationId({ namespace: target, pod: podName, planSha256 }) } : {};
    if (target === namespace) return { item, ...operation };
    // A drill restores only the labelled objects (drill.ts): what the pod needs to start comes along.
    warnOfClaims(ctx, fromBackup, podId, target, restore.name);
    return { item, ...operation, additionalItems: podReferences(fromBackup, namespace) };
  } catch (err) {
    throw new Error(`${podId}: its Victoria data cannot be restored by ${restore.name} from backup ${record.name}: ${(err as Error).message}`);
  }
}

/** In a drill, the claims the pod mounts, which do not come along (podClaims): it would wait for them. */
function warnOfClaims(ctx: ActionContext, pod: Pod, podId: string, target: string, restore: string): void {
  const claims = podClaims(pod);
  if (claims.length === 0) return;
  ctx.log.warn(
    `${podId}: drill: it mounts PersistentVolumeClaim(s) ${claims.join(', ')}, which a drill does not restore (a claim from the backup is bound to the production volume): ` +
      `in ${target} the pod stays Pending until claims of those names exist there; create them (empty) in ${target}, or drill a pod that keeps its data on hostPath only`,
    { namespace: target, name: pod.metadata?.name ?? '', restore },
  );
}

/**
 * A pod restored into another namespace (a drill) without a backup record: its data is not in
 * the backup (taken before the plugin was installed, or not captured), so there is nothing to
 * restore, but unchanged it would run on the production hostPath, on the node's network. It gets
 * the drill's rewrite (drillPod): an empty drill path, the pod network, and a warning.
 */
async function drillWithoutData(ctx: ActionContext, restore: VeleroRestoreInfo, pod: Pod, fromBackup: Pod, target: string, podId: string): Promise<Pod> {
  const config = await loadPluginConfig(KubeClient.load(), restore.veleroNamespace);
  let volume: Volume;
  try {
    ({ volume } = findDataVolume(pod, config.companionContainer, podId));
  } catch (err) {
    throw new Error(
      `${podId}: not restored into ${target}: it has no backup record (annotation ${RECORD_ANNOTATION}; its data is not in backup ${restore.backupName}), ` +
        `and without the companion's data mount the drill cannot tell its production data volume from others: ${(err as Error).message}`,
    );
  }
  const { pod: drilled, moved, note } = drillPod(pod, fromBackup, volume, config, { restore: restore.name, namespace: target });
  const where = moved ? `an empty hostPath ${moved.path} (production path ${moved.production} untouched)` : `its volume "${volume.name}" (${describeVolume(volume)}), which is not a hostPath`;
  ctx.log.warn(
    `${podId}: no backup record on it (annotation ${RECORD_ANNOTATION}): its Victoria data is not in backup ${restore.backupName}, and in ${target} it starts on ${where}; ${note}`,
    { namespace: target, name: pod.metadata?.name ?? '', restore: logRef(restore) },
  );
  return drilled;
}

interface RestorePodRequest {
  ctx: ActionContext;
  kube: KubeClient;
  restore: VeleroRestoreInfo;
  pod: Pod;
  fromBackup: Pod;
  record: BackupRecord;
  namespace: string;
  podName: string;
  podId: string;
}

/** One pod's restore under way: its request, the plugin ConfigMap, the data volume and where it goes, and the fields of its log lines. */
interface PodRestore extends RestorePodRequest {
  fields: { namespace: string; name: string; restore: string; backup: string };
  config: PluginConfig;
  volume: Volume;
  mount: VolumeMount;
  /** The namespace the pod is restored into: another than its own in a drill. */
  target: string;
  drill: boolean;
}

/** The pod with its data volume placed, that place for the log, and, in a drill, the note saying where the data went instead of production. */
interface Placement {
  pod: Pod;
  destination: string;
  /** Whether the init container may move a non-empty data directory's contents aside (restoreReplace). */
  replace: boolean;
  drillNote?: string;
}

async function restorePod(r: RestorePodRequest): Promise<KubeObject> {
  const { ctx, kube, restore, record, namespace, podName, podId } = r;
  const fields = { namespace, name: podName, restore: logRef(restore), backup: record.name };
  const config = await loadPluginConfig(kube, restore.veleroNamespace, (level, message) => ctx.log[level](message, fields));
  const { volume, mount } = findDataVolume(r.pod, config.companionContainer, podId);
  const target = targetNamespace(restore, namespace);
  const s: PodRestore = { ...r, fields, config, volume, mount, target, drill: target !== namespace };
  if (record.name !== restore.backupName) {
    // The pod was backed up without our action (unlabelled, or the plugin not installed) and kept
    // the record of the backup it was itself restored from: that backup's data is all there is.
    // A drill checks the backup it restores: verified, the older data would pass it in its stead.
    if (s.drill) {
      throw new Error(
        `the drill is of backup ${restore.backupName}, which does not hold this pod's data: the plugin did not capture it in ${restore.backupName} ` +
          `(its backup record, naming ${record.name}, came along from an earlier restore); a drill checks the backup it restores, so the older data of ${record.name} is not restored in its place: ` +
          'drill a backup whose log shows this pod backed up',
      );
    }
    ctx.log.warn(
      `${podId}: its backup record names backup ${record.name}, not ${restore.backupName}: the plugin did not capture its data in ${restore.backupName} ` +
        `(the record came along from an earlier restore), so the older data of ${record.name} is restored; to get newer data, restore a backup whose log shows this pod backed up`,
      fields,
    );
  }
  const conflicts = await restoreConflicts(kube, target, podName, r.fromBackup);
  for (const warning of conflicts.warnings) ctx.log.warn(`${podId}: ${warning}`, fields);
  // Velero will not create the pod: no plan, no init container.
  if (conflicts.podExists) return r.pod;
  if (config.restoreReplace && !s.drill) {
    // The init container runs in a container of its own, where the kernel hides another
    // container's lock on flock.lock: it could not tell a running database's files from old ones.
    const risk = 'a pod of it may run a database on the same hostPath, whose files the restore would move aside (the init container cannot see a database in another container)';
    if (conflicts.liveWorkload) throw new Error(`${conflicts.liveWorkload} exists already, and restoreReplace is "true": ${risk}; ${RUNBOOK}`);
    // Unknown is not absent: moving data aside needs the answer.
    if (conflicts.uncheckedWorkload) {
      throw new Error(
        `could not check whether ${conflicts.uncheckedWorkload} exists, and restoreReplace is "true": if it does, ${risk}; ` +
          `restore again once the API server answers (for a 403, grant Velero's service account get on that resource: velero/rbac), after you ${RUNBOOK}`,
      );
    }
  }
  const recordedNamespace = recordedWorkloadFolder(record).split('/')[0];
  if (recordedNamespace !== namespace) {
    // The backup action writes a pod's record for the pod's own namespace. One naming another was
    // copied or edited, and following it would hand this namespace links to another's data.
    throw new Error(
      `its backup record names data of namespace ${recordedNamespace} (${record.prefix}/${record.name}), not of ${namespace}: the record was copied from another pod or edited, ` +
        `and a restore never reads another namespace's data; if that data really is this pod's, restore it by hand with velero-plugin-victoria restore (docs/cli.md)`,
    );
  }

  const placement = placeData(s);
  const image = config.restoreImage ? { image: config.restoreImage } : await pluginImage(kube, restore.veleroNamespace);
  const location = await openBackupLocation(kube, restore, record);
  try {
    for (const warning of location.warnings) ctx.log.warn(warning, fields);
    const planKey = `${PLAN_FOLDER}/${restore.uid}/${namespace}.${podName}.json`;
    const plan = await makeRestorePlan({
      store: location.store,
      backupKey: location.backupKey,
      planKey,
      restore: restore.name,
      expiresSeconds: config.restorePlanExpirySeconds,
      ...(location.publicUrl ? { publicUrl: location.publicUrl } : {}),
    });
    const tooSlow = paceProblem(config, plan);
    if (tooSlow) {
      // Its links are of no use now; a later restore's sweep of expired plans would remove it too.
      await location.store.delete([planKey]).catch(() => undefined);
      throw new Error(tooSlow);
    }
    logPlan(s, location, plan, placement.destination);
    const tooOld = olderDatabaseProblem(plan.kind, plan.source, databaseImage(placement.pod.spec ?? {}, volume.name, config.companionContainer));
    if (tooOld) ctx.log.warn(`${podId}: backup ${record.name}: ${tooOld}`, fields);
    await removeOldPlans(s, location);
    const pod = withRestoreContainer(s, placement, image, plan, location);
    // A drill's placement carries its note, and only a drill's.
    if (placement.drillNote !== undefined) return withDrillVerification(s, pod, plan, placement.drillNote);
    warnIfBeyondRetention(ctx, pod, volume.name, config.companionContainer, plan, restore, `${podId}: backup ${record.name}`, fields);
    return pod;
  } finally {
    await location.close();
  }
}

/**
 * Where the data goes: a drill never touches the production hostPath (drillPod takes it from the
 * backed-up pod, so that running the action again on its own output gives the same path).
 */
function placeData(s: PodRestore): Placement {
  const { ctx, volume, config, podId, fields } = s;
  if (s.drill) {
    const { pod, moved, note } = drillPod(s.pod, s.fromBackup, volume, config, { restore: s.restore.name, namespace: s.target });
    // A volume the drill cannot remap may be production's own (an NFS share): restoreReplace would
    // move production's data aside there, so the init container refuses a non-empty one instead.
    const where = moved
      ? `hostPath ${moved.path} (production path ${moved.production} untouched)`
      : `its volume "${volume.name}" (${describeVolume(volume)}): not a hostPath, so it is not remapped; it must not be the production volume${config.restoreReplace ? ', and restoreReplace does not apply to it (a non-empty directory there is refused)' : ''}`;
    return {
      pod,
      destination: moved ? `hostPath ${moved.path}` : describeVolume(volume),
      replace: moved ? config.restoreReplace : false,
      drillNote: `drill: ${s.target}/${s.podName} data restored into ${where}; ${note}`,
    };
  }
  if (volume.hostPath?.type === 'Directory') {
    // After a disaster the node may not have the directory: the restore creates it instead of the pod failing its type check.
    const pod = withVolume(s.pod, { ...volume, hostPath: { ...volume.hostPath, type: 'DirectoryOrCreate' } });
    ctx.log.info(`${podId}: hostPath ${volume.hostPath.path} of volume "${volume.name}" is created if missing (type Directory changed to DirectoryOrCreate in the restored pod)`, fields);
    return { pod, destination: describeVolume(volume), replace: config.restoreReplace };
  }
  return { pod: s.pod, destination: describeVolume(volume), replace: config.restoreReplace };
}

/**
 * A download paced by restoreMaxBytesPerSecond that cannot end before the plan's links expire
 * fails when they do, after hours, and again on every new restore (a new plan does not resume the
 * old one's files): refused at once, naming both keys. The text of the refusal, if any.
 */
export function paceProblem(config: Pick<PluginConfig, 'restoreMaxBytesPerSecond' | 'restorePlanExpirySeconds'>, plan: Pick<MadeRestorePlan, 'bytes' | 'expiresAt' | 'sessionEndsAt'>, now = Date.now()): string | undefined {
  const rate = config.restoreMaxBytesPerSecond;
  if (rate <= 0) return undefined;
  const needed = plan.bytes / rate;
  const valid = (Date.parse(plan.expiresAt) - now) / 1000;
  if (needed <= valid) return undefined;
  const hours = (seconds: number) => `${(seconds / 3600).toFixed(1)} h`;
  return (
    `its ${formatBytes(plan.bytes)} at restoreMaxBytesPerSecond ${formatBytes(rate)}/s take at least ${hours(needed)}, but the restore plan's links expire in ${hours(valid)} ` +
    `(at ${plan.expiresAt}, ${plan.sessionEndsAt ? "when the location's credentials' session ends" : `restorePlanExpirySeconds ${config.restorePlanExpirySeconds}`}): ` +
    `the init container would fail when they expire. Raise restorePlanExpirySeconds (at most ${MAX_PLAN_EXPIRY_SECONDS}, 7 days) or restoreMaxBytesPerSecond in the plugin ConfigMap, then restore again`
  );
}

/** The restore in the log: what comes from where into which volume, until when its links work, and which bucket is read. */
function logPlan(s: PodRestore, location: BackupLocation, plan: MadeRestorePlan, destination: string): void {
  const { ctx, config, record, podId, fields } = s;
  const source = `s3://${location.bucket}/${location.prefix}/${location.backupKey}/`;
  ctx.log.info(
    `${podId}: restoring ${plan.kind} backup ${record.name} of ${record.workload} (${plan.files} files, ${formatBytes(plan.bytes)}) from ${source} ` +
      `into volume "${s.volume.name}" (${destination}) mounted at ${DATA_MOUNT}, by init container victoria-restore; the plan and its download links are valid until ${plan.expiresAt}` +
      (config.restoreReplace ? '; existing data in it is moved aside (restoreReplace)' : '; a non-empty data directory is refused (restoreReplace is false)'),
    fields,
  );
  if (plan.sessionEndsAt) {
    ctx.log.warn(
      `${podId}: the location's credentials are temporary (their session ends at ${plan.sessionEndsAt}), and the links they sign stop working with them: ` +
        `the restore plan is valid until ${plan.expiresAt}, not for restorePlanExpirySeconds (${config.restorePlanExpirySeconds} s). ` +
        'The init container must have downloaded everything by then; for longer restores give the location longer sessions or static keys (docs/velero-restore.md)',
      fields,
    );
  }
  if (location.bucket !== record.bucket) {
    ctx.log.info(`${podId}: the backup was written to bucket ${record.bucket}; reading it from bucket ${location.bucket} of location ${location.name}`, fields);
  }
}

/** Housekeeping, never a reason to fail the restore: the plans of earlier restores, once expired. */
async function removeOldPlans(s: PodRestore, location: BackupLocation): Promise<void> {
  const { ctx, podId, fields } = s;
  await removeExpiredPlans(location.store).then(
    (n) => n > 0 && ctx.log.info(`${podId}: deleted ${n} expired restore plan(s) of earlier restores from s3://${location.bucket}/${location.prefix}/${PLAN_FOLDER}/`, fields),
    (err: unknown) => ctx.log.warn(`${podId}: could not delete expired restore plans (${(err as Error).message}); a lifecycle rule on ${PLAN_FOLDER}/ can do it instead`, fields),
  );
}

/** The pod with the init container that downloads the plan's files into the data volume before the database starts. */
function withRestoreContainer(
  s: PodRestore,
  { pod, replace }: Placement,
  image: { image: string; imagePullPolicy?: string },
  plan: MadeRestorePlan,
  location: BackupLocation,
): Pod {
  const { config, volume } = s;
  // A configured securityContext is the user's choice of identity: the files stay that user's.
  const { securityContext, chown } = config.restoreSecurityContext
    ? { securityContext: lockedDown(s.pod, config.restoreSecurityContext), chown: undefined }
    : restoreIdentity(s.pod, volume.name, config.companionContainer);
  return withInitContainer(
    pod,
    restoreContainer({
      ...image,
      planUrl: plan.url,
      planSha256: plan.sha256,
      replace,
      directIo: config.restoreDirectIo,
      maxBytesPerSecond: config.restoreMaxBytesPerSecond,
      dataMount: s.mount,
      ...(s.record.dataSubdir ? { dataSubdir: s.record.dataSubdir } : {}),
      resources: config.restoreResources,
      securityContext,
      ...(chown ? { chown } : {}),
      tls: location.tls,
    }),
  );
}

/**
 * A drill's pod: where its data went, in the log, and the post-restore hook that fails the Restore
 * when the restored database does not answer the counts recorded at backup time. A backup without
 * counts gets no hook, and a warning that only the checksums are checked.
 */
function withDrillVerification(s: PodRestore, pod: Pod, plan: MadeRestorePlan, drillNote: string): Pod {
  const { ctx, config, record, podId, fields } = s;
  ctx.log.info(drillNote, { ...fields, namespace: s.target });
  if (Object.keys(plan.counts).length === 0) {
    ctx.log.warn(
      `${podId}: drill: backup ${record.name} holds no counts (${plan.countsError ?? 'not recorded'}), so no \`companion verify\` hook is added: ` +
        'the restore checks every SHA-256, but not what the restored database answers',
      fields,
    );
    return pod;
  }
  const host = drillVerifyHost(pod, config.companionContainer);
  if (host) ctx.log.info(`${podId}: drill: ${host.note}`, fields);
  const verifying = withAnnotations(
    pod,
    verifyHookAnnotations({
      ...(host ? { host: host.host } : {}),
      companion: config.companionContainer,
      counts: plan.counts,
      countedBefore: plan.countedBefore,
      ...(plan.countedFrom ? { countedFrom: plan.countedFrom } : {}),
      // Velero's wait covers the init container's download, which cannot outlast the plan.
      waitTimeoutSeconds: config.restorePlanExpirySeconds + 600,
      healthTimeoutSeconds: VERIFY_HEALTH_TIMEOUT_SECONDS,
      countTimeoutSeconds: Math.ceil(config.countTimeoutMs / 1000),
    }),
    (key) => ctx.log.warn(`${podId}: its annotation ${key} is replaced by the drill's verification hook`, fields),
  );
  ctx.log.info(`${podId}: drill: after the restore, Velero runs \`companion verify\` in ${config.companionContainer} and expects ${JSON.stringify(plan.counts)}`, fields);
  return verifying;
}

/**
 * A backup older than the restored database's retention holds only data behind its deadline, which
 * the database deletes as it starts: the restore would succeed and leave nothing. Drills raise the
 * retention instead (withDrillRetention); a real restore keeps the user's settings and says so.
 */
function warnIfBeyondRetention(
  ctx: ActionContext,
  pod: Pod,
  volumeName: string,
  companion: string,
  plan: { kind: 'metrics' | 'logs'; createdAt: string },
  restore: VeleroRestoreInfo,
  what: string,
  fields: Record<string, string>,
): void {
  const retention = databaseRetention(pod.spec ?? {}, volumeName, companion, plan.kind);
  const made = Date.parse(plan.createdAt);
  if (!retention || Number.isNaN(made) || Date.now() - made <= retention.ms) return;
  const days = ((Date.now() - made) / 86_400_000).toFixed(1);
  const product = plan.kind === 'metrics' ? 'VictoriaMetrics' : 'VictoriaLogs';
  // Velero applies a Restore's resource modifiers after the item actions: one may raise the retention yet.
  const fix = restore.resourceModifier
    ? `unless the resource modifiers of ${restore.name} (ConfigMap ${restore.resourceModifier}), which Velero applies after this action, give it a longer -retentionPeriod`
    : 'give the restored pod a longer -retentionPeriod (a Velero resource modifier on the Restore can append it to the container\'s args) or restore a newer backup';
  ctx.log.warn(
    `${what} was made ${days} days ago, longer than the restored ${product} keeps data (-retentionPeriod=${retention.value}${retention.isDefault ? ', its default' : ''}): ` +
      `it deletes the restored data as it starts; ${fix}`,
    fields,
  );
}

/** The pod with these annotations; `onReplace` hears of each different one it had, unless an earlier run of this action wrote it. */
function withAnnotations(pod: Pod, add: Record<string, string>, onReplace: (key: string) => void): Pod {
  const annotations = { ...(pod.metadata?.annotations ?? {}) };
  const ours = (annotations[RESTORE_HOOK.command] ?? '').includes('"companion","verify"');
  for (const [k, v] of Object.entries(add)) {
    if (annotations[k] !== undefined && annotations[k] !== v && !ours) onReplace(k);
    annotations[k] = v;
  }
  return { ...pod, metadata: { ...pod.metadata, annotations } };
}
