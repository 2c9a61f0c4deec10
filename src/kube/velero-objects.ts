/**
 * The parts of Velero's custom resources (velero.io/v1) that the plugin reads or writes. Only the
 * fields used are typed; the API server keeps the rest, and callers that create objects pass
 * anything else Velero accepts through the index signatures.
 */

/** A Kubernetes label selector as Velero's Backup and Restore specs carry it. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface BackupStorageLocation {
  apiVersion: 'velero.io/v1';
  kind: 'BackupStorageLocation';
  metadata: ObjectMeta;
  spec: {
    provider: string;
    /** `caCert`: base64 PEM (deprecated); `caCertRef`: a key of a Secret in Velero's namespace holding the PEM. */
    objectStorage: { bucket: string; prefix?: string; caCert?: string; caCertRef?: { name: string; key: string } };
    /** The provider's settings (velero-plugin-for-aws keys for S3). */
    config?: Record<string, string>;
    /** The Secret key holding this location's credentials; absent means Velero's own credentials file. */
    credential?: { name: string; key: string };
    default?: boolean;
    accessMode?: 'ReadWrite' | 'ReadOnly';
  };
  status?: { phase?: 'Available' | 'Unavailable'; message?: string; lastValidationTime?: string };
}

export interface VeleroBackup {
  apiVersion: 'velero.io/v1';
  kind: 'Backup';
  metadata: ObjectMeta;
  spec: { storageLocation?: string; [field: string]: unknown };
  status?: { phase?: string; [field: string]: unknown };
}

export interface RestoreSpec {
  backupName?: string;
  includedNamespaces?: string[];
  excludedNamespaces?: string[];
  includedResources?: string[];
  excludedResources?: string[];
  namespaceMapping?: Record<string, string>;
  labelSelector?: LabelSelector;
  [field: string]: unknown;
}

export interface RestoreStatus {
  /** New, FailedValidation, InProgress, WaitingForPluginOperations…, Finalizing…, Completed, PartiallyFailed, Failed. */
  phase?: string;
  errors?: number;
  warnings?: number;
  failureReason?: string;
  validationErrors?: string[];
  startTimestamp?: string;
  completionTimestamp?: string;
  [field: string]: unknown;
}

export interface VeleroRestore {
  apiVersion: 'velero.io/v1';
  kind: 'Restore';
  metadata: ObjectMeta;
  spec: RestoreSpec;
  status?: RestoreStatus;
}
