/**
 * Whether a Backup leaves a pod out by the user's own choice, as Velero decides it: the resource
 * filters (`--include-resources`/`--exclude-resources`, or the namespace-scoped pair of Velero
 * 1.14+), the label selectors (`--selector`, `--or-selector`), and the pod's
 * `velero.io/exclude-from-backup=true` label (pkg/backup/item_collector.go, item_backupper.go).
 * Velero never hands such a pod to the pod action, so the workload check must not read its missing
 * data as a failure; it warns instead, naming the filter.
 */
import type { LabelSelector } from '../kube/velero-objects.js';

/** The Backup spec fields that filter items, as Velero sends them. */
export interface BackupFilters {
  includedResources?: string[];
  excludedResources?: string[];
  includedNamespaceScopedResources?: string[];
  excludedNamespaceScopedResources?: string[];
  labelSelector?: LabelSelector;
  orLabelSelectors?: LabelSelector[];
}

/** Velero's label for items it must skip (pkg/apis/velero/v1/labels_annotations.go). */
const EXCLUDE_FROM_BACKUP_LABEL = 'velero.io/exclude-from-backup';

/** Velero resolves resource names through discovery, so `pods`, `pod` and `po` (and `pods.`, the core group) all mean pods. */
const isPods = (name: string): boolean => ['pods', 'pod', 'po'].includes(name.toLowerCase().replace(/\.$/, ''));

/** Whether a list of resource names covers pods: given and naming them or `*`. */
const coversPods = (list: string[] | undefined): boolean => (list ?? []).some((n) => n === '*' || isPods(n));

function matches(selector: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, key);
    const ok =
      operator === 'In' ? has && values.includes(labels[key]!)
      : operator === 'NotIn' ? !has || !values.includes(labels[key]!)
      : operator === 'Exists' ? has
      : operator === 'DoesNotExist' ? !has
      : true; // Velero would have refused the Backup over an unknown operator.
    if (!ok) return false;
  }
  return true;
}

/**
 * Why the Backup leaves out a pod with these labels, with what to change to capture it, or
 * undefined when the Backup includes it.
 */
export function podExclusion(filters: BackupFilters, podLabels: Record<string, string>): string | undefined {
  if (podLabels[EXCLUDE_FROM_BACKUP_LABEL] === 'true') return `it is labelled ${EXCLUDE_FROM_BACKUP_LABEL}=true (remove the label to capture its data)`;
  const scoped = filters.includedNamespaceScopedResources !== undefined || filters.excludedNamespaceScopedResources !== undefined;
  const [included, excluded, flag] = scoped
    ? [filters.includedNamespaceScopedResources, filters.excludedNamespaceScopedResources, '--include-namespace-scoped-resources / --exclude-namespace-scoped-resources']
    : [filters.includedResources, filters.excludedResources, '--include-resources / --exclude-resources'];
  if (coversPods(excluded)) return `the backup excludes pods (${flag}; take pods out of the exclusions to capture its data)`;
  if (included && included.length > 0 && !coversPods(included)) return `the backup does not include pods (${flag}; add pods to capture its data)`;
  const selectors = [...(filters.labelSelector ? [filters.labelSelector] : []), ...(filters.orLabelSelectors ?? [])];
  if (selectors.length > 0 && !selectors.some((s) => matches(s, podLabels))) {
    return `its labels match none of the backup's label selectors (--selector / --or-selector; select its pods too to capture its data)`;
  }
  return undefined;
}
