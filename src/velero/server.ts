/**
 * The go-plugin gRPC server, as the stock Velero host (v1.14 to main) expects it
 * (docs/plugin-protocol.md):
 * a unix socket in the temp dir, the handshake line `1|2|unix|<path>|grpc|` as the first and only
 * stdout output, the kind services routed by the request's `plugin` name, Shutdown that answers and
 * exits 0, and idle Broker/Stdio/Health services so that no host version logs noise.
 */
import { randomInt } from 'node:crypto';
import { unlinkSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { PluginError, textForVelero, toServiceError } from './errors.js';
import { describeItem, groupResource, parseItem } from './items.js';
import type { Logger } from './log.js';
import { loadServices } from './protos.js';
import type {
  ActionContext,
  BackupItemActionV2,
  DeleteItemAction,
  ItemAction,
  KubeObject,
  OperationProgress,
  PluginKind,
  ResourceIdentifier,
  ResourceSelector,
  RestoreItemActionV2,
} from './types.js';

/** Kinds in the order Go plugin servers list them (it is the order Velero runs actions in). */
const KIND_ORDER: PluginKind[] = ['BackupItemActionV2', 'RestoreItemActionV2', 'DeleteItemAction'];

/** Velero's ValidatePluginName, plus "not velero.io" for third-party plugins. */
export function validatePluginName(name: string): string | undefined {
  const parts = name.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) return `plugin name "${name}" must be "<domain>/<name>"`;
  const [domain] = parts;
  if (domain.length > 253 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(domain)) {
    return `plugin name "${name}": "${domain}" is not a DNS-1123 subdomain`;
  }
  if (domain === 'velero.io') return `plugin name "${name}": the velero.io prefix is reserved for Velero's own plugins`;
  return undefined;
}

export interface ServeOptions {
  actions: ItemAction[];
  /** What ListPlugins returns as `command`: the path Velero can exec again. */
  command: string;
  log: Logger;
  /** Directory for the socket; go-plugin's PLUGIN_UNIX_SOCKET_DIR, else the temp dir. */
  socketDir?: string;
  /** Writes the handshake line; stdout by default. */
  writeHandshake?: (line: string) => void;
  /** Called after Shutdown was answered and the server stopped; exits the process by default. */
  onShutdown?: () => void;
}

export interface RunningServer {
  socketPath: string;
  stop(): void;
}

function selectorMessage(sel: ResourceSelector): Record<string, unknown> {
  return {
    includedNamespaces: sel.includedNamespaces ?? [],
    excludedNamespaces: sel.excludedNamespaces ?? [],
    includedResources: sel.includedResources ?? [],
    excludedResources: sel.excludedResources ?? [],
    selector: sel.selector ?? '',
  };
}

function timestamp(date: Date | undefined): Record<string, unknown> | null {
  if (!date) return null;
  const ms = date.getTime();
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
}

function progressMessage(p: OperationProgress): Record<string, unknown> {
  return {
    completed: p.completed,
    // Velero shows it in `velero backup describe`: redacted like every log line and error.
    err: textForVelero(p.err ?? ''),
    nCompleted: String(p.nCompleted ?? 0),
    nTotal: String(p.nTotal ?? 0),
    operationUnits: p.operationUnits ?? '',
    description: textForVelero(p.description ?? ''),
    started: timestamp(p.started),
    updated: timestamp(p.updated),
  };
}

function identifiers(list: ResourceIdentifier[] | undefined): ResourceIdentifier[] {
  return (list ?? []).map((r) => ({ group: r.group, resource: r.resource, namespace: r.namespace, name: r.name }));
}

function itemBytes(result: KubeObject | undefined, input: Buffer, what: string): Buffer {
  if (result === undefined) return input;
  const bytes = Buffer.from(JSON.stringify(result));
  parseItem(bytes, what); // never hand Velero an item it cannot decode
  return bytes;
}

type Request = Record<string, unknown> & { plugin?: string };
type Services = ReturnType<typeof loadServices>;

/** Every RPC goes through here: exceptions become statuses, never a crashed process. */
function unary<Res>(log: Logger, method: string, fn: (req: Request, ctx: ActionContext) => Promise<Res>): grpc.handleUnaryCall<Request, Res> {
  return (call, callback) => {
    const req = call.request;
    const ctx: ActionContext = { log: log.with({ plugin: typeof req.plugin === 'string' ? req.plugin : '', method }) };
    fn(req, ctx).then(
      (res) => callback(null, res),
      (err: unknown) => {
        ctx.log.debug(`${method} failed`, { error: err instanceof Error ? err.message : String(err) });
        callback(toServiceError(err) as grpc.ServiceError);
      },
    );
  };
}

function itemContext(ctx: ActionContext, item: KubeObject): ActionContext {
  // name/namespace/resource must be strings: Velero's log counter panics on anything else.
  return { log: ctx.log.with({ resource: groupResource(item), namespace: item.metadata?.namespace ?? '', name: item.metadata?.name ?? '' }) };
}

/**
 * The lister and the three kind services. One host process serves every action of this binary, so
 * each request is routed to the action its `plugin` field names.
 */
class ActionServices {
  private readonly byName = new Map<string, ItemAction>();

  /** Refuses what Velero would refuse at start-up: a malformed name, or one name twice. */
  constructor(
    actions: ItemAction[],
    private readonly log: Logger,
  ) {
    for (const action of actions) {
      const problem = validatePluginName(action.name);
      if (problem) throw new Error(problem);
      if (this.byName.has(action.name)) throw new Error(`plugin name "${action.name}" registered twice: Velero refuses to start then`);
      this.byName.set(action.name, action);
    }
  }

  /** The plugin names in the order they were given. */
  get names(): string[] {
    return [...this.byName.keys()];
  }

  addTo(server: grpc.Server, services: Services, command: string): void {
    server.addService(services.PluginLister.service, this.pluginLister(command));
    server.addService(services.BackupItemActionV2.service, this.backupItemAction());
    server.addService(services.RestoreItemActionV2.service, this.restoreItemAction());
    server.addService(services.DeleteItemAction.service, this.deleteItemAction());
  }

  private lookup<K extends PluginKind>(kind: K, name: unknown): Extract<ItemAction, { kind: K }> {
    const action = typeof name === 'string' ? this.byName.get(name) : undefined;
    if (!action || action.kind !== kind) {
      const known = [...this.byName.values()].filter((a) => a.kind === kind).map((a) => a.name);
      throw new PluginError(
        grpc.status.NOT_FOUND,
        `${kind} plugin "${String(name)}" is not served by this binary (it serves: ${known.join(', ') || 'none'})`,
      );
    }
    return action as Extract<ItemAction, { kind: K }>;
  }

  private pluginLister(command: string): grpc.UntypedServiceImplementation {
    return {
      ListPlugins: unary(this.log, 'ListPlugins', async () => {
        const sorted = [...this.byName.values()].sort(
          (a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || a.name.localeCompare(b.name),
        );
        return { plugins: sorted.map((a) => ({ command, kind: a.kind, name: a.name })) };
      }),
    };
  }

  private appliesTo(kind: PluginKind) {
    return unary(this.log, 'AppliesTo', async (req) => ({ ResourceSelector: selectorMessage(this.lookup(kind, req.plugin).appliesTo()) }));
  }

  /** Progress and Cancel of the v2 actions, which differ only in the name of the CR field. */
  private operationHandlers(kind: 'BackupItemActionV2' | 'RestoreItemActionV2', crField: 'backup' | 'restore') {
    return {
      Progress: unary(this.log, 'Progress', async (req, ctx) => {
        const action = this.lookup(kind, req.plugin);
        return { progress: progressMessage(await action.progress(String(req.operationID ?? ''), req[crField] as Buffer, ctx)) };
      }),
      Cancel: unary(this.log, 'Cancel', async (req, ctx) => {
        await this.lookup(kind, req.plugin).cancel(String(req.operationID ?? ''), req[crField] as Buffer, ctx);
        return {};
      }),
    };
  }

  private backupItemAction(): grpc.UntypedServiceImplementation {
    return {
      AppliesTo: this.appliesTo('BackupItemActionV2'),
      Execute: unary(this.log, 'Execute', async (req, ctx) => {
        const action: BackupItemActionV2 = this.lookup('BackupItemActionV2', req.plugin);
        const input = req.item as Buffer;
        const item = parseItem(input, 'ExecuteRequest.item');
        const res = await action.execute({ item, itemBytes: input, backup: req.backup as Buffer }, itemContext(ctx, item));
        return {
          item: itemBytes(res?.item, input, `reply item for ${describeItem(item)}`),
          additionalItems: identifiers(res?.additionalItems),
          operationID: res?.operationID ?? '',
          postOperationItems: identifiers(res?.postOperationItems),
        };
      }),
      ...this.operationHandlers('BackupItemActionV2', 'backup'),
    };
  }

  private restoreItemAction(): grpc.UntypedServiceImplementation {
    return {
      AppliesTo: this.appliesTo('RestoreItemActionV2'),
      Execute: unary(this.log, 'Execute', async (req, ctx) => {
        const action: RestoreItemActionV2 = this.lookup('RestoreItemActionV2', req.plugin);
        const input = req.item as Buffer;
        const item = parseItem(input, 'RestoreItemActionExecuteRequest.item');
        const res = await action.execute(
          { item, itemBytes: input, restore: req.restore as Buffer, itemFromBackup: req.itemFromBackup as Buffer },
          itemContext(ctx, item),
        );
        return {
          item: itemBytes(res?.item, input, `reply item for ${describeItem(item)}`),
          additionalItems: identifiers(res?.additionalItems),
          skipRestore: res?.skipRestore ?? false,
          operationID: res?.operationID ?? '',
          waitForAdditionalItems: res?.waitForAdditionalItems ?? false,
          additionalItemsReadyTimeout: null,
        };
      }),
      ...this.operationHandlers('RestoreItemActionV2', 'restore'),
      AreAdditionalItemsReady: unary(this.log, 'AreAdditionalItemsReady', async (req, ctx) => {
        const action = this.lookup('RestoreItemActionV2', req.plugin);
        const items = identifiers(req.additionalItems as ResourceIdentifier[] | undefined);
        return { ready: await action.areAdditionalItemsReady(items, req.restore as Buffer, ctx) };
      }),
    };
  }

  private deleteItemAction(): grpc.UntypedServiceImplementation {
    return {
      AppliesTo: this.appliesTo('DeleteItemAction'),
      Execute: unary(this.log, 'Execute', async (req, ctx) => {
        const action: DeleteItemAction = this.lookup('DeleteItemAction', req.plugin);
        const input = req.item as Buffer;
        const item = parseItem(input, 'DeleteItemActionExecuteRequest.item');
        await action.execute({ item, itemBytes: input, backup: req.backup as Buffer }, itemContext(ctx, item));
        return {};
      }),
    };
  }
}

/** Where the server listens, and how to remove the socket file again. */
interface PluginSocket {
  path: string;
  remove(): void;
}

function pluginSocket(socketDir: string | undefined): PluginSocket {
  const dir = socketDir ?? process.env.PLUGIN_UNIX_SOCKET_DIR ?? tmpdir();
  const path = join(dir, `plugin${randomInt(1e8, 1e9)}`);
  if (Buffer.byteLength(path) >= 108) {
    throw new Error(`socket path ${path} is too long for a unix socket; set TMPDIR to a shorter directory`);
  }
  const remove = (): void => {
    try {
      if (existsSync(path)) unlinkSync(path);
    } catch {
      // best effort: the directory may already be gone
    }
  };
  return { path, remove };
}

/** Shutdown answers first and stops afterwards: the host waits for the reply, then for the exit. */
function controllerService(log: Logger, stop: () => void, onShutdown: (() => void) | undefined): grpc.UntypedServiceImplementation {
  return {
    Shutdown: (_call: unknown, callback: grpc.sendUnaryData<object>) => {
      log.debug('shutdown requested by the host');
      callback(null, {});
      // Let the reply reach the host before the connection goes away; the host waits up to 2 s.
      setTimeout(() => {
        stop();
        (onShutdown ?? (() => process.exit(0)))();
      }, 50);
    },
  };
}

/** Velero never uses the broker; an idle stream that ends with the host's is the polite answer. */
function brokerService(): grpc.UntypedServiceImplementation {
  return {
    StartStream: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
      call.on('data', () => undefined);
      call.on('end', () => call.end());
      call.on('error', () => undefined);
    },
  };
}

/** go-plugin ≥1.5 hosts subscribe to stdio; Velero discards it, so the stream stays silent. */
function stdioService(): grpc.UntypedServiceImplementation {
  return {
    StreamStdio: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      call.on('cancelled', () => call.end());
      call.on('error', () => undefined);
    },
  };
}

function healthService(log: Logger): grpc.UntypedServiceImplementation {
  const healthy = (service: unknown): boolean => service === '' || service === 'plugin';
  return {
    Check: unary(log, 'HealthCheck', async (req) => {
      if (!healthy(req.service)) throw new PluginError(grpc.status.NOT_FOUND, `unknown service "${String(req.service)}"`);
      return { status: 'SERVING' };
    }),
    Watch: (call: grpc.ServerWritableStream<Request, unknown>) => {
      call.write({ status: healthy(call.request.service) ? 'SERVING' : 'SERVICE_UNKNOWN' });
      call.on('cancelled', () => call.end());
      call.on('error', () => undefined);
    },
  };
}

/** Binds the socket, then prints the handshake: the host takes the line as the sign the server is up. */
function listen(server: grpc.Server, socket: PluginSocket, options: ServeOptions, plugins: string[], stop: () => void): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`unix:${socket.path}`, grpc.ServerCredentials.createInsecure(), (err) => {
      if (err) {
        reject(new Error(`cannot listen on unix socket ${socket.path}: ${err.message}`));
        return;
      }
      process.once('exit', socket.remove);
      // The host reads only this first stdout line; nothing may be printed before it.
      (options.writeHandshake ?? ((line) => process.stdout.write(line)))(`1|2|unix|${socket.path}|grpc|\n`);
      options.log.debug('plugin server listening', { socket: socket.path, plugins: plugins.join(',') });
      resolve({ socketPath: socket.path, stop });
    });
  });
}

/** Throws (rather than rejects) for an action list or socket directory Velero could not use. */
export function serve(options: ServeOptions): Promise<RunningServer> {
  const { log } = options;
  const services = loadServices();
  const actions = new ActionServices(options.actions, log);
  const server = new grpc.Server({ 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 });
  actions.addTo(server, services, options.command);

  const socket = pluginSocket(options.socketDir);
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    server.forceShutdown();
    socket.remove();
  };

  server.addService(services.GRPCController.service, controllerService(log, stop, options.onShutdown));
  server.addService(services.GRPCBroker.service, brokerService());
  server.addService(services.GRPCStdio.service, stdioService());
  server.addService(services.Health.service, healthService(log));
  return listen(server, socket, options, actions.names, stop);
}
