/**
 * The names Velero knows our actions by and the pods they apply to. Changing a name is a breaking
 * change for operators: it is the key of the plugin ConfigMap and appears in `velero plugin get`.
 */
import type { ResourceSelector } from '../velero/types.js';

export const PLUGIN_DOMAIN = 'velero-plugin-victoria.io';

export const BACKUP_ACTION = `${PLUGIN_DOMAIN}/pod-backup`;
export const RESTORE_ACTION = `${PLUGIN_DOMAIN}/pod-restore`;
export const DELETE_ACTION = `${PLUGIN_DOMAIN}/pod-delete`;

/** Pods of a Victoria workload carry this label with the value `metrics` or `logs`. */
export const KIND_LABEL = `${PLUGIN_DOMAIN}/kind`;

/** Velero hands us only the labelled Victoria pods. */
export const VICTORIA_PODS: ResourceSelector = {
  includedResources: ['pods'],
  selector: `${KIND_LABEL} in (metrics,logs)`,
};
