/**
 * The plugin's Kubernetes API access: where the configuration comes from, and the few reads and
 * writes the actions need, each turning an API failure into a KubeError that names the object and
 * what to fix (the RBAC rule to grant, the name to check). Secret contents never reach an error or
 * a log: errors quote only the API server's Status message.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import {
  ApiException,
  Observable,
  type ConfigurationOptions,
  type ObservableMiddleware,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  type V1ConfigMap,
  type V1DaemonSet,
  type V1Deployment,
  type V1Namespace,
  type V1Pod,
  type V1ReplicaSet,
  type V1Secret,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import { codeForStatus, describeAnswer, KubeError, parseStatus, socketReason, UNAUTHORIZED_HINT } from './errors.js';
import type { BackupStorageLocation, VeleroBackup, VeleroRestore } from './velero-objects.js';

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';
const VELERO = { group: 'velero.io', version: 'v1' } as const;

export interface LoadKubeConfigOptions {
  /** A kubeconfig file; wins over everything else. */
  kubeconfig?: string;
  /** A context other than the kubeconfig's current one. */
  context?: string;
  /** Default: process.env. */
  env?: NodeJS.ProcessEnv;
}

function loadFile(kc: KubeConfig, file: string): void {
  try {
    kc.loadFromFile(file);
  } catch (err) {
    throw new KubeError('Config', `cannot load kubeconfig ${file}: ${yamlReason(err) ?? (err instanceof Error ? err.message : String(err))}`);
  }
}

/**
 * A YAML syntax error's reason and position, without the lines around it that js-yaml quotes in its
 * message: in a kubeconfig those can be a token or a client key.
 */
function yamlReason(err: unknown): string | undefined {
  const e = err as { name?: string; reason?: string; mark?: { line?: number; column?: number } };
  if (e?.name !== 'YAMLException' || !e.reason) return undefined;
  const at = e.mark?.line === undefined ? '' : ` at line ${e.mark.line + 1}, column ${(e.mark.column ?? 0) + 1}`;
  return `not valid YAML: ${e.reason}${at}`;
}

/**
 * The configuration as kubectl would find it, except that inside a pod (Velero's) the service
 * account wins over ~/.kube/config: an explicit file, then KUBECONFIG (a list, the first file's
 * current context wins), then the pod's service account, then ~/.kube/config.
 */
export function loadKubeConfig(options: LoadKubeConfigOptions = {}): KubeConfig {
  const env = options.env ?? process.env;
  const kc = new KubeConfig();
  const fromEnv = (env.KUBECONFIG ?? '').split(delimiter).filter(Boolean);
  // A minimal image may have no home directory at all (homedir() then throws): no file there, then.
  let home: string | undefined;
  try {
    home = join(env.HOME ?? homedir(), '.kube', 'config');
  } catch {
    home = undefined;
  }
  if (options.kubeconfig) {
    loadFile(kc, options.kubeconfig);
  } else if (fromEnv.length > 0) {
    loadFile(kc, fromEnv[0]!);
    for (const file of fromEnv.slice(1)) {
      const more = new KubeConfig();
      loadFile(more, file);
      try {
        kc.mergeConfig(more, true);
      } catch (err) {
        throw new KubeError('Config', `cannot merge kubeconfig ${file} (KUBECONFIG): ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  } else if (env.KUBERNETES_SERVICE_HOST && existsSync(SERVICE_ACCOUNT_TOKEN)) {
    kc.loadFromCluster();
  } else if (home && existsSync(home)) {
    loadFile(kc, home);
  } else {
    throw new KubeError(
      'Config',
      'no Kubernetes configuration: not running in a pod with a service account, KUBECONFIG is not set and there is no ~/.kube/config',
    );
  }
  if (options.context) {
    if (!kc.getContextObject(options.context)) throw new KubeError('Config', `the kubeconfig has no context "${options.context}": kubectl config get-contexts lists those it has`);
    kc.setCurrentContext(options.context);
  }
  if (!kc.getCurrentCluster()) {
    throw new KubeError('Config', `the kubeconfig's current context "${kc.getCurrentContext() ?? ''}" names no cluster: choose a context with kubectl config use-context`);
  }
  return kc;
}

type Verb = 'get' | 'list' | 'create' | 'delete';
const VERB_WORD: Record<Verb, string> = { get: 'read', list: 'list', create: 'create', delete: 'delete' };

/** What a call touches: enough to say what failed and which RBAC rule would allow it. */
interface Target {
  verb: Verb;
  /** Plural resource name, as RBAC spells it. */
  resource: string;
  group: string;
  namespace?: string;
  name?: string;
  labelSelector?: string;
}

/**
 * How long one API call may take, answer included. Without it undici's own defaults (300 s for the
 * headers, 300 s between body chunks) would hold a backup item on a stuck API server for minutes
 * per call; the plugin's reads are single objects and short lists, answered in milliseconds.
 */
const API_CALL_TIMEOUT_MS = 60_000;

function resourceRef(t: Target): string {
  return t.group ? `${t.resource}.${t.group}` : t.resource;
}

export class KubeClient {
  readonly kubeConfig: KubeConfig;
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly callTimeoutMs: number;

  constructor(kubeConfig: KubeConfig, options: { callTimeoutMs?: number } = {}) {
    this.kubeConfig = kubeConfig;
    this.callTimeoutMs = options.callTimeoutMs ?? API_CALL_TIMEOUT_MS;
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.apps = kubeConfig.makeApiClient(AppsV1Api);
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  static load(options?: LoadKubeConfigOptions & { callTimeoutMs?: number }): KubeClient {
    return new KubeClient(loadKubeConfig(options), options?.callTimeoutMs === undefined ? {} : { callTimeoutMs: options.callTimeoutMs });
  }

  /** The API server's URL, for messages. */
  get server(): string {
    return this.kubeConfig.getCurrentCluster()?.server ?? '(no cluster)';
  }

  getBackupStorageLocation(namespace: string, name: string): Promise<BackupStorageLocation> {
    return this.call({ verb: 'get', resource: 'backupstoragelocations', group: VELERO.group, namespace, name }, (o) =>
      this.custom.getNamespacedCustomObject({ ...VELERO, plural: 'backupstoragelocations', namespace, name }, o),
    );
  }

  getBackup(namespace: string, name: string): Promise<VeleroBackup> {
    return this.call({ verb: 'get', resource: 'backups', group: VELERO.group, namespace, name }, (o) =>
      this.custom.getNamespacedCustomObject({ ...VELERO, plural: 'backups', namespace, name }, o),
    );
  }

  /** Velero's Backups in its namespace, optionally only those with these labels. */
  async listBackups(namespace: string, labelSelector?: string): Promise<VeleroBackup[]> {
    const list = await this.call({ verb: 'list', resource: 'backups', group: VELERO.group, namespace, ...(labelSelector ? { labelSelector } : {}) }, (o) =>
      this.custom.listNamespacedCustomObject({ ...VELERO, plural: 'backups', namespace, ...(labelSelector ? { labelSelector } : {}) }, o),
    );
    return ((list as { items?: VeleroBackup[] }).items ?? []);
  }

  getNamespace(name: string): Promise<V1Namespace> {
    return this.call({ verb: 'get', resource: 'namespaces', group: '', name }, (o) => this.core.readNamespace({ name }, o));
  }

  getSecret(namespace: string, name: string): Promise<V1Secret> {
    return this.call({ verb: 'get', resource: 'secrets', group: '', namespace, name }, (o) =>
      this.core.readNamespacedSecret({ namespace, name }, o),
    );
  }

  /** One key of a Secret, decoded. The error for a missing key lists the key names, never values. */
  async getSecretKey(namespace: string, name: string, key: string): Promise<Buffer> {
    const secret = await this.getSecret(namespace, name);
    const value = secret.data?.[key];
    if (value === undefined) {
      const keys = Object.keys(secret.data ?? {}).sort();
      throw new KubeError(
        'NotFound',
        `secret "${name}" in namespace ${namespace} has no key "${key}" (its keys: ${keys.length ? keys.join(', ') : 'none'}); fix the key name that refers to it`,
      );
    }
    return Buffer.from(value, 'base64');
  }

  getPod(namespace: string, name: string): Promise<V1Pod> {
    return this.call({ verb: 'get', resource: 'pods', group: '', namespace, name }, (o) => this.core.readNamespacedPod({ namespace, name }, o));
  }

  /** The last `lines` lines a container of a pod logged (at most 4 KiB). */
  podLogTail(namespace: string, name: string, container: string, lines: number): Promise<string> {
    return this.call({ verb: 'get', resource: 'pods/log', group: '', namespace, name }, (o) =>
      this.core.readNamespacedPodLog({ namespace, name, container, tailLines: lines, limitBytes: 4096 }, o),
    );
  }

  async listPods(namespace: string, labelSelector: string): Promise<V1Pod[]> {
    const list = await this.call({ verb: 'list', resource: 'pods', group: '', namespace, labelSelector }, (o) =>
      this.core.listNamespacedPod({ namespace, labelSelector }, o),
    );
    return list.items;
  }

  async listConfigMaps(namespace: string, labelSelector: string): Promise<V1ConfigMap[]> {
    const list = await this.call({ verb: 'list', resource: 'configmaps', group: '', namespace, labelSelector }, (o) =>
      this.core.listNamespacedConfigMap({ namespace, labelSelector }, o),
    );
    return list.items;
  }

  getDeployment(namespace: string, name: string): Promise<V1Deployment> {
    return this.call({ verb: 'get', resource: 'deployments', group: 'apps', namespace, name }, (o) =>
      this.apps.readNamespacedDeployment({ namespace, name }, o),
    );
  }

  getStatefulSet(namespace: string, name: string): Promise<V1StatefulSet> {
    return this.call({ verb: 'get', resource: 'statefulsets', group: 'apps', namespace, name }, (o) =>
      this.apps.readNamespacedStatefulSet({ namespace, name }, o),
    );
  }

  getDaemonSet(namespace: string, name: string): Promise<V1DaemonSet> {
    return this.call({ verb: 'get', resource: 'daemonsets', group: 'apps', namespace, name }, (o) =>
      this.apps.readNamespacedDaemonSet({ namespace, name }, o),
    );
  }

  getReplicaSet(namespace: string, name: string): Promise<V1ReplicaSet> {
    return this.call({ verb: 'get', resource: 'replicasets', group: 'apps', namespace, name }, (o) =>
      this.apps.readNamespacedReplicaSet({ namespace, name }, o),
    );
  }

  createRestore(namespace: string, restore: VeleroRestore): Promise<VeleroRestore> {
    const name = restore.metadata.name ?? `${restore.metadata.generateName ?? ''}*`;
    return this.call({ verb: 'create', resource: 'restores', group: VELERO.group, namespace, name }, (o) =>
      this.custom.createNamespacedCustomObject({ ...VELERO, plural: 'restores', namespace, body: restore }, o),
    );
  }

  getRestore(namespace: string, name: string): Promise<VeleroRestore> {
    return this.call({ verb: 'get', resource: 'restores', group: VELERO.group, namespace, name }, (o) =>
      this.custom.getNamespacedCustomObject({ ...VELERO, plural: 'restores', namespace, name }, o),
    );
  }

  async deleteNamespace(name: string): Promise<void> {
    await this.call({ verb: 'delete', resource: 'namespaces', group: '', name }, (o) => this.core.deleteNamespace({ name }, o));
  }

  private async call<T>(target: Target, request: (options: ConfigurationOptions) => Promise<T>): Promise<T> {
    const timeoutMs = this.callTimeoutMs;
    // The signal covers the whole exchange: undici's fetch aborts the body's reading with it too.
    const deadline: ObservableMiddleware = {
      pre: (context) => {
        context.setSignal(AbortSignal.timeout(timeoutMs));
        return new Observable(Promise.resolve(context));
      },
      post: (response) => new Observable(Promise.resolve(response)),
    };
    try {
      return await request({ middleware: [deadline], middlewareMergeStrategy: 'append' });
    } catch (err) {
      throw this.toKubeError(target, err);
    }
  }

  private toKubeError(t: Target, err: unknown): KubeError {
    const ref = resourceRef(t);
    const what = t.name !== undefined ? `${ref} "${t.name}"` : t.labelSelector ? `${ref} with labels "${t.labelSelector}"` : ref;
    const where = t.namespace ? ` in namespace ${t.namespace}` : '';
    const head = `cannot ${VERB_WORD[t.verb]} ${what}${where}`;
    // ApiException's own message carries the response body and headers; only the Status message is used.
    if ((err as Error | undefined)?.name === 'TimeoutError') {
      return new KubeError('Timeout', `${head}: the Kubernetes API server at ${this.server} did not answer within ${this.callTimeoutMs / 1000} s; check the API server's health (kubectl get --raw /readyz)`, { cause: err });
    }
    if (!(err instanceof ApiException)) {
      return new KubeError('Unreachable', `${head}: cannot reach the Kubernetes API server at ${this.server}: ${socketReason(err)}`, { cause: err });
    }
    const httpStatus = err.code;
    const status = parseStatus(err.body);
    const code = codeForStatus(httpStatus);
    let hint: string;
    switch (code) {
      case 'Unauthorized':
        hint = UNAUTHORIZED_HINT;
        break;
      case 'Forbidden':
        hint = `grant ${t.verb} on ${ref}${t.namespace ? ` in namespace ${t.namespace}` : ''} to the user named above (Velero's service account when the plugin runs in Velero)`;
        break;
      case 'NotFound':
        // Without details.name the 404 came from the router: the resource type itself is not served.
        hint = status?.details?.name ? 'check the name and the namespace' : `the API server does not serve ${ref}: is it installed?`;
        break;
      case 'AlreadyExists':
        hint = 'choose another name or delete the existing object';
        break;
      default:
        hint = '';
    }
    return new KubeError(code, `${head}: ${describeAnswer(httpStatus, status)}${hint ? `; ${hint}` : ''}`, { status: httpStatus });
  }
}
