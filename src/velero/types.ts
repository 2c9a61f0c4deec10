/**
 * What an item action looks like to the go-plugin server. The server knows nothing of Victoria:
 * actions/ implements these interfaces, main wires them in.
 */
import type { Logger } from './log.js';

/** generated.ResourceSelector: which items Velero hands to the action. */
export interface ResourceSelector {
  includedNamespaces?: string[];
  excludedNamespaces?: string[];
  includedResources?: string[];
  excludedResources?: string[];
  /** Label selector in Kubernetes string syntax. */
  selector?: string;
}

/** generated.ResourceIdentifier. */
export interface ResourceIdentifier {
  group: string;
  resource: string;
  namespace: string;
  name: string;
}

/** A Kubernetes object as Velero sends it: JSON with at least a kind. */
export interface KubeObject {
  apiVersion?: string;
  kind: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** generated.OperationProgress; Velero dereferences it unconditionally, so it is never absent. */
export interface OperationProgress {
  completed: boolean;
  err?: string;
  nCompleted?: number;
  nTotal?: number;
  operationUnits?: string;
  description?: string;
  started?: Date;
  updated?: Date;
}

export interface ActionContext {
  log: Logger;
}

export interface ItemInput {
  /** The item, parsed and checked to be an object with a kind. */
  item: KubeObject;
  /** The exact bytes Velero sent, returned unchanged when the action has nothing to do. */
  itemBytes: Buffer;
}

export interface BackupExecuteResult {
  item?: KubeObject;
  additionalItems?: ResourceIdentifier[];
  operationID?: string;
  postOperationItems?: ResourceIdentifier[];
}

export interface RestoreExecuteResult {
  item?: KubeObject;
  additionalItems?: ResourceIdentifier[];
  skipRestore?: boolean;
  operationID?: string;
  waitForAdditionalItems?: boolean;
}

export interface BackupItemActionV2 {
  readonly kind: 'BackupItemActionV2';
  readonly name: string;
  appliesTo(): ResourceSelector;
  /** `backup` is the Backup CR JSON as Velero sent it (apiVersion/kind may be empty). */
  execute(input: ItemInput & { backup: Buffer }, ctx: ActionContext): Promise<BackupExecuteResult | undefined>;
  progress(operationID: string, backup: Buffer, ctx: ActionContext): Promise<OperationProgress>;
  cancel(operationID: string, backup: Buffer, ctx: ActionContext): Promise<void>;
}

export interface RestoreItemActionV2 {
  readonly kind: 'RestoreItemActionV2';
  readonly name: string;
  appliesTo(): ResourceSelector;
  execute(
    input: ItemInput & { restore: Buffer; itemFromBackup: Buffer },
    ctx: ActionContext,
  ): Promise<RestoreExecuteResult | undefined>;
  progress(operationID: string, restore: Buffer, ctx: ActionContext): Promise<OperationProgress>;
  cancel(operationID: string, restore: Buffer, ctx: ActionContext): Promise<void>;
  areAdditionalItemsReady(additionalItems: ResourceIdentifier[], restore: Buffer, ctx: ActionContext): Promise<boolean>;
}

export interface DeleteItemAction {
  readonly kind: 'DeleteItemAction';
  readonly name: string;
  appliesTo(): ResourceSelector;
  execute(input: ItemInput & { backup: Buffer }, ctx: ActionContext): Promise<void>;
}

export type ItemAction = BackupItemActionV2 | RestoreItemActionV2 | DeleteItemAction;
export type PluginKind = ItemAction['kind'];
