/**
 * The names Velero knows our actions by and the pods they apply to. Changing a name is a breaking
 * change for operators: it is the key of the plugin ConfigMap and appears in `velero plugin get`.
 */
import type { ResourceSelector } from '../velero/types.js';

export const PLUGIN_DOMAIN = 'velero-plugin-victoria.io';

export const BACKUP_ACTION = `${PLUGIN_DOMAIN}/pod-backup`;
export const RESTORE_ACTION = `${PLUGIN_DOMAIN}/pod-restore`;
export const DELETE_ACTION = `${PLUGIN_DOMAIN}/pod-delete`;

/**
 * A Backup (or the Schedule that makes it) labelled with this and `false` is not counted for drills,
 * `true` is counted whatever the plugin ConfigMap's `counts` says: counting reads the whole
 * database, which a frequent tier need not pay for when drills use another one.
 */
export const COUNTS_LABEL = `${PLUGIN_DOMAIN}/counts`;

/**
 * The executable's path in our image (Dockerfile ENTRYPOINT): the companion sidecar and the restore
 * init container run it from there, and the manifests in velero/ name it.
 */
export const EXECUTABLE = '/plugins/velero-plugin-victoria';

/** Pods of a Victoria workload carry this label with the value `metrics` or `logs`. */
export const KIND_LABEL = `${PLUGIN_DOMAIN}/kind`;

/**
 * The backup side is handed every pod that carries the label, whatever its value, as the Schedules
 * select them (`operator: Exists`): a mistyped value then fails the item, naming the label, instead
 * of leaving the pod's data out of a backup that completes (no silent skip).
 */
export const LABELLED_PODS: ResourceSelector = { includedResources: ['pods'], selector: KIND_LABEL };

/** Restore and delete act only on pods a backup can have written data for. */
export const VICTORIA_PODS: ResourceSelector = {
  includedResources: ['pods'],
  selector: `${KIND_LABEL} in (metrics,logs)`,
};
