/**
 * A loopback stand-in for the Kubernetes API server (no real one can run here). It speaks the real
 * wire protocol for exactly what the plugin uses, so that @kubernetes/client-node and our exec
 * client talk to it unchanged through a kubeconfig:
 *
 * - HTTPS on 127.0.0.1 with a throw-away CA, bearer-token authentication (401 Status otherwise);
 * - reads of the objects the test put, single and list, with labelSelector (=, ==, !=, in, notin,
 *   exists, !exists) and fieldSelector (metadata.name, metadata.namespace; pods also status.phase,
 *   spec.nodeName), namespaced and cluster-wide; 404 and 403 answers are the API server's Status
 *   objects, word for word;
 * - create and delete for velero.io restores and namespaces (deleting a namespace deletes what was in it);
 * - pod exec over WebSocket, subprotocols v5.channel.k8s.io and v4.channel.k8s.io (the client's
 *   order wins; `protocols` restricts the server), with the frames the API server and kubelet send:
 *   an empty frame on the first output channel when the session opens, stdout/stderr frames, then
 *   the exit status as a JSON Status on channel 3 (Success, or Failure/NonZeroExitCode with the
 *   ExitCode cause), then a close. v5 honours the client's CLOSE frame [255, 0] (stdin EOF); v4 has none.
 *   The command runs as a local process chosen by the test (onExec), with backpressure both ways.
 *   A client that goes away ends nothing, as with the kubelet: the process's stdin is closed (when
 *   the exec has one), its output is no longer read, and it runs on until it exits by itself.
 * - pod logs (GET pods/{name}/log, text/plain) as the API server and the kubelet answer them: the
 *   container choice and its 400s, tailLines and limitBytes (422 when out of range), and a container
 *   that never ran; the text is what the test set with setLog();
 * - fault hooks: cut the exec stream after N bytes of stdout, or accept an exec and never answer.
 *
 * Every request is recorded (method, path, query, status) so a test can assert what the plugin did.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect as netConnect, createServer as netServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { STATUS_CODES } from 'node:http';
import { constants as osConstants } from 'node:os';
import { WebSocketServer, type WebSocket } from 'ws';
import { makeTestTls, type TestTls } from './tls.js';

export const V5 = 'v5.channel.k8s.io';
export const V4 = 'v4.channel.k8s.io';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; labels?: Record<string, string>; [field: string]: unknown };
  [field: string]: unknown;
}

/** The local process an exec runs as. `env` is the container's environment: only PATH is added. */
export interface ExecTarget {
  file: string;
  args?: string[];
  env?: Record<string, string>;
  cwd?: string;
}
/**
 * Maps the command the client asked for to a local process; undefined = "executable file not found".
 * E.g. the companion sidecar as the plugin will exec it:
 *   api.onExec('monitoring', 'vm-0', 'victoria-companion', (cmd) =>
 *     cmd[0] === '/plugins/velero-plugin-victoria'
 *       ? { file: `${ROOT}/dist/velero-plugin-victoria`, args: cmd.slice(1), env: { VICTORIA_KIND: 'metrics', VICTORIA_URL: vm.url } }
 *       : undefined);
 */
export type ExecHandler = (command: string[]) => ExecTarget | undefined;
/** Runs the requested command itself on this machine (`cat`, `sh -c …`). */
export const runLocally: ExecHandler = (command) => (command.length ? { file: command[0]!, args: command.slice(1) } : undefined);

export interface ExecFault {
  /** Send this many bytes of stdout, then destroy the connection (no status, no close frame). */
  cutAfterStdoutBytes?: number;
  /** Accept the exec (101) and then send nothing at all. */
  hang?: boolean;
  /** Only execs whose command has this argument (e.g. `tar`) get the fault. */
  onlyCommand?: string;
  /** Only execs into this pod get the fault. */
  onlyPod?: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  status: number;
}

export interface ExecRecord {
  namespace: string;
  pod: string;
  container: string;
  command: string[];
  protocol: string;
  stdinBytes: number;
  stdinClosed: boolean;
  stdoutBytes: number;
  /** The local process's id, once it started. */
  pid?: number;
  exitCode?: number;
  /** When the WebSocket opened and closed, and when the process exited (Date.now()). */
  openedAt: number;
  closedAt?: number;
  exitedAt?: number;
}

interface Resource {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  /** POST and DELETE are served (everything else is read-only here). */
  writable?: boolean;
}

const RESOURCES: Resource[] = [
  { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true },
  { group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true },
  { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true },
  { group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false, writable: true },
  { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment', namespaced: true },
  { group: 'apps', version: 'v1', plural: 'statefulsets', kind: 'StatefulSet', namespaced: true },
  { group: 'apps', version: 'v1', plural: 'replicasets', kind: 'ReplicaSet', namespaced: true },
  { group: 'apps', version: 'v1', plural: 'daemonsets', kind: 'DaemonSet', namespaced: true },
  { group: 'velero.io', version: 'v1', plural: 'backups', kind: 'Backup', namespaced: true },
  { group: 'velero.io', version: 'v1', plural: 'backupstoragelocations', kind: 'BackupStorageLocation', namespaced: true },
  { group: 'velero.io', version: 'v1', plural: 'restores', kind: 'Restore', namespaced: true, writable: true },
];

const apiVersionOf = (r: Resource) => (r.group ? `${r.group}/${r.version}` : r.version);
const qualified = (r: Resource) => (r.group ? `${r.plural}.${r.group}` : r.plural);

// ---- Status objects, as the API server writes them ----

interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: Record<string, unknown>;
  code: number;
}

function failure(code: number, reason: string, message: string, details?: Record<string, unknown>): Status {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

function notFound(r: Resource, name: string): Status {
  return failure(404, 'NotFound', `${qualified(r)} "${name}" not found`, { name, ...(r.group ? { group: r.group } : {}), kind: r.plural });
}

const NO_SUCH_RESOURCE = failure(404, 'NotFound', 'the server could not find the requested resource', {});

// ---- selectors ----

class BadRequest extends Error {}

type Requirement = (labels: Record<string, string>) => boolean;

/** Top-level commas separate requirements; commas inside `in (…)` do not. */
function splitSelector(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter(Boolean);
}

function parseRequirement(text: string): Requirement {
  let m = /^([A-Za-z0-9._/-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(text);
  if (m) {
    const [, key, op, list] = m as unknown as [string, string, string, string];
    const values = list.split(',').map((v) => v.trim());
    return op === 'in' ? (l) => key in l && values.includes(l[key]!) : (l) => !(key in l) || !values.includes(l[key]!);
  }
  m = /^([A-Za-z0-9._/-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)$/.exec(text);
  if (m) {
    const [, key, op, value] = m as unknown as [string, string, string, string];
    return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
  }
  m = /^(!?)([A-Za-z0-9._/-]+)$/.exec(text);
  if (m) {
    const [, not, key] = m as unknown as [string, string, string];
    return not ? (l) => !(key in l) : (l) => key in l;
  }
  throw new BadRequest(`unable to parse requirement: found '${text}', expected: in, notin, =, ==, !=, gt, lt`);
}

function labelFilter(selector: string | null): Requirement {
  const requirements = splitSelector(selector ?? '').map(parseRequirement);
  return (labels) => requirements.every((r) => r(labels));
}

const FIELD_PATHS: Record<string, (o: KubeObject) => unknown> = {
  'metadata.name': (o) => o.metadata.name,
  'metadata.namespace': (o) => o.metadata.namespace,
};
const POD_FIELD_PATHS: Record<string, (o: KubeObject) => unknown> = {
  'status.phase': (o) => (o.status as { phase?: string } | undefined)?.phase,
  'spec.nodeName': (o) => (o.spec as { nodeName?: string } | undefined)?.nodeName,
};

function fieldFilter(r: Resource, selector: string | null): (o: KubeObject) => boolean {
  const tests = splitSelector(selector ?? '').map((text) => {
    const m = /^([A-Za-z.]+)\s*(==|=|!=)\s*(.*)$/.exec(text);
    if (!m) throw new BadRequest(`invalid selector: '${selector}'; can't understand '${text}'`);
    const [, field, op, value] = m as unknown as [string, string, string, string];
    const read = FIELD_PATHS[field] ?? (r.plural === 'pods' ? POD_FIELD_PATHS[field] : undefined);
    if (!read) throw new BadRequest(`field label not supported: ${field}`);
    return (o: KubeObject) => (String(read(o) ?? '') === value) !== (op === '!=');
  });
  return (o) => tests.every((t) => t(o));
}

// ---- the server ----

interface ParsedPath {
  resource: Resource;
  namespace?: string;
  name?: string;
  subresource?: string;
}

function parsePath(pathname: string): ParsedPath | undefined {
  const parts = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  let group = '';
  let version: string | undefined;
  let rest: string[];
  if (parts[0] === 'api') {
    version = parts[1];
    rest = parts.slice(2);
  } else if (parts[0] === 'apis') {
    group = parts[1] ?? '';
    version = parts[2];
    rest = parts.slice(3);
  } else return undefined;
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  if (rest.length < 1 || rest.length > 3) return undefined;
  const [plural, name, subresource] = rest;
  const resource = RESOURCES.find((r) => r.group === group && r.version === version && r.plural === plural);
  if (!resource) return undefined;
  if (namespace !== undefined && !resource.namespaced) return undefined;
  if (namespace === undefined && resource.namespaced && name !== undefined) return undefined;
  return { resource, namespace, name, subresource };
}

const HIGH_WATER = 1024 * 1024;
/** A read of the command's stdout: as much as a pipe read gives, which is what frames carried before. */
const STDOUT_READ = 64 * 1024;
/** Exec output frames up to a read plus the channel byte are built in reused buffers. */
const FRAME_BUFFER = STDOUT_READ + 1;
const frameBuffers: Buffer[] = [];

/** The command's stdout: a Unix socket whose other end is the process's fd 1. */
interface StdoutPair {
  /** Reads into one reused buffer and hands each read to `sink`, valid only during the call. */
  reader: Socket;
  /** Given to the process as its stdout, then closed here. */
  writer: Socket;
  sink: (chunk: Buffer) => void;
}

let pairs = 0;

/**
 * A connected pair of Unix stream sockets for a command's stdout. The stand-in reads it with
 * `onread` into one buffer: a child process pipe hands over every read as a fresh Buffer, and in a
 * benchmark moving a gigabyte that garbage made this process's collector seconds of CPU that no API
 * server written in Go spends (bench/exec-path shares two cores between everything).
 */
async function stdoutPair(): Promise<StdoutPair> {
  const server = netServer();
  const name = `\0kube-api-stand-in-${process.pid}-${++pairs}`; // Linux abstract namespace: no file to remove
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(name, resolve));
  try {
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    const buffer = Buffer.allocUnsafe(STDOUT_READ);
    const pair: Partial<StdoutPair> & { sink: StdoutPair['sink'] } = { sink: () => undefined };
    pair.reader = netConnect({
      path: name,
      onread: {
        buffer,
        callback: (n: number) => {
          pair.sink(buffer.subarray(0, n));
          return true;
        },
      },
    });
    pair.writer = await accepted;
    return pair as StdoutPair;
  } finally {
    server.close();
  }
}

export class KubeApiServer {
  /** https://127.0.0.1:port */
  url = '';
  readonly token: string;
  readonly caPem: string;
  /** The user named in 403 messages. */
  readonly user: string;
  /** Subprotocols the exec endpoint accepts (default v5 and v4); set [V4] to act as an older API server. */
  protocols: string[];
  readonly requests: RecordedRequest[] = [];
  readonly execs: ExecRecord[] = [];

  private readonly tls: TestTls;
  private readonly server: Server;
  /** The subprotocol chosen in upgrade(), for the WebSocket server's answer. */
  private readonly negotiated = new WeakMap<IncomingMessage, string>();
  private readonly wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    handleProtocols: (_offered, req) => this.negotiated.get(req) ?? false,
  });
  private readonly objects = new Map<string, KubeObject>();
  private readonly handlers = new Map<string, ExecHandler>();
  private readonly logs = new Map<string, Buffer>();
  private readonly forbidden: Array<{ verb: string; resource: string; namespace?: string }> = [];
  private readonly sockets = new Set<Socket>();
  private readonly children = new Set<ChildProcess>();
  private faults: ExecFault[] = [];
  /** Plural resource names whose REST requests get no answer at all (a stuck API server). */
  private readonly stalled = new Set<string>();
  private readonly outages: Array<{ verb: string; resource: string; left: number }> = [];
  private resourceVersion = 1;
  private kubeconfigs = 0;

  constructor(options: { token?: string; protocols?: string[]; user?: string } = {}) {
    this.tls = makeTestTls();
    this.caPem = this.tls.caPem;
    this.token = options.token ?? randomBytes(16).toString('hex');
    this.protocols = options.protocols ?? [V5, V4];
    this.user = options.user ?? 'system:serviceaccount:velero:velero';
    // The cipher an API server written in Go picks on hardware with AES instructions: crypto/tls
    // chooses by its own order, AES-128-GCM first (Node's default would be the client's AES-256-GCM).
    const ciphers = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384';
    this.server = createServer({ key: this.tls.keyPem, cert: this.tls.certPem, ciphers, honorCipherOrder: true }, (req, res) => this.handle(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.upgrade(req, socket, head));
    this.server.on('secureConnection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Creates or replaces an object (namespaced ones default to namespace "default"). */
  put(obj: KubeObject): KubeObject {
    const resource = RESOURCES.find((r) => apiVersionOf(r) === obj.apiVersion && r.kind === obj.kind);
    if (!resource) throw new Error(`kube-api stand-in: no resource for ${obj.apiVersion} ${obj.kind}`);
    const name = obj.metadata.name;
    if (!name) throw new Error('kube-api stand-in: put() needs metadata.name');
    const stored = structuredClone(obj);
    if (resource.namespaced) stored.metadata.namespace ??= 'default';
    else delete stored.metadata.namespace;
    stored.metadata.uid ??= randomUUID();
    stored.metadata.creationTimestamp ??= new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    stored.metadata.resourceVersion = String(++this.resourceVersion);
    this.objects.set(this.key(resource, stored.metadata.namespace, name), stored);
    return structuredClone(stored);
  }

  get(apiVersion: string, kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const resource = RESOURCES.find((r) => apiVersionOf(r) === apiVersion && r.kind === kind);
    if (!resource) return undefined;
    const obj = this.objects.get(this.key(resource, resource.namespaced ? namespace : undefined, name));
    return obj && structuredClone(obj);
  }

  /** Deletes an object, as `kubectl delete` would; true when it was there. */
  remove(apiVersion: string, kind: string, namespace: string | undefined, name: string): boolean {
    const resource = RESOURCES.find((r) => apiVersionOf(r) === apiVersion && r.kind === kind);
    if (!resource) throw new Error(`kube-api stand-in: no resource for ${apiVersion} ${kind}`);
    return this.objects.delete(this.key(resource, resource.namespaced ? namespace : undefined, name));
  }

  /** The command of an exec into this pod's container runs as what `handler` returns. */
  onExec(namespace: string, pod: string, container: string, handler: ExecHandler): void {
    this.handlers.set(`${namespace}/${pod}/${container}`, handler);
  }

  /**
   * The log of a pod's container, as GET pods/{pod}/log answers it (undefined: none again). Without
   * one, a container "never ran": 400 waiting to start (the reason from the pod's status when it
   * has one, else PodInitializing), or 204 No Content when the pod has no spec.nodeName (unscheduled).
   */
  setLog(namespace: string, pod: string, container: string, text: string | Buffer | undefined): void {
    const key = `${namespace}/${pod}/${container}`;
    if (text === undefined) this.logs.delete(key);
    else this.logs.set(key, Buffer.from(text));
  }

  /** Applies to every exec from now on (the first fault that matches an exec); undefined clears them. */
  setExecFault(fault: ExecFault | ExecFault[] | undefined): void {
    this.faults = fault === undefined ? [] : Array.isArray(fault) ? fault : [fault];
  }

  /** Requests for `resource` (plural, or `pods/log`) are read and never answered; the result answers them again (new requests only). */
  stall(resource: string): () => void {
    this.stalled.add(resource);
    return () => this.stalled.delete(resource);
  }

  /** The next `times` requests of `verb` on `resource` (plural, or `pods/log`) are answered 503, as by an API server restarting. */
  unavailable(verb: string, resource: string, times: number): void {
    this.outages.push({ verb, resource, left: times });
  }

  /** RBAC denies `verb` on `resource` (plural, `pods/exec` or `pods/log`), in one namespace or everywhere; the result allows it again. */
  forbid(verb: string, resource: string, namespace?: string): () => void {
    const rule = { verb, resource, namespace };
    this.forbidden.push(rule);
    return () => {
      const at = this.forbidden.indexOf(rule);
      if (at >= 0) this.forbidden.splice(at, 1);
    };
  }

  /** Writes a kubeconfig for this server (JSON, which is YAML) and returns its path. */
  writeKubeconfig(options: { namespace?: string; token?: string } = {}): string {
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'stand-in', cluster: { server: this.url, 'certificate-authority-data': Buffer.from(this.caPem).toString('base64') } }],
      users: [{ name: 'stand-in', user: { token: options.token ?? this.token } }],
      contexts: [{ name: 'stand-in', context: { cluster: 'stand-in', user: 'stand-in', namespace: options.namespace ?? 'default' } }],
      'current-context': 'stand-in',
    };
    const file = join(this.tls.dir, `kubeconfig-${++this.kubeconfigs}.json`);
    writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
    return file;
  }

  async close(): Promise<void> {
    for (const child of this.children) child.kill('SIGKILL');
    for (const ws of this.wss.clients) ws.terminate();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.tls.dir, { recursive: true, force: true });
  }

  // ---- REST ----

  private key(r: Resource, namespace: string | undefined, name: string): string {
    return `${r.group}/${r.plural}/${namespace ?? ''}/${name}`;
  }

  private authorized(req: IncomingMessage): boolean {
    return req.headers.authorization === `Bearer ${this.token}`;
  }

  private forbiddenStatus(verb: string, r: Resource, resource: string, namespace?: string, name?: string): Status | undefined {
    const denied = this.forbidden.some((f) => f.verb === verb && f.resource === resource && (f.namespace === undefined || f.namespace === namespace));
    if (!denied) return undefined;
    const subject = name !== undefined ? `${qualified(r)} "${name}"` : qualified(r);
    const scope = namespace !== undefined ? `in the namespace "${namespace}"` : 'at the cluster scope';
    return failure(403, 'Forbidden', `${subject} is forbidden: User "${this.user}" cannot ${verb} resource "${resource}" in API group "${r.group}" ${scope}`, {
      ...(name !== undefined ? { name } : {}),
      ...(r.group ? { group: r.group } : {}),
      kind: r.plural,
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const method = req.method ?? 'GET';
    const reply = (status: number, body: unknown) => {
      this.requests.push({ method, path: url.pathname, query: url.searchParams, status });
      if (status === 204) return res.writeHead(204).end(); // no Content-Type either, as the API server
      // A Buffer is a log: the API server streams it as text/plain.
      const text = Buffer.isBuffer(body) ? body : JSON.stringify(body);
      res.writeHead(status, { 'Content-Type': Buffer.isBuffer(body) ? 'text/plain' : 'application/json', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    };
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (!this.authorized(req)) return reply(401, failure(401, 'Unauthorized', 'Unauthorized'));
      const parsed = parsePath(url.pathname);
      const log = parsed?.resource.plural === 'pods' && parsed.subresource === 'log' && parsed.name !== undefined;
      if (!parsed || (parsed.subresource !== undefined && !log)) return reply(404, NO_SUCH_RESOURCE);
      if (this.stalled.has(log ? 'pods/log' : parsed.resource.plural)) return;
      try {
        const [status, body] = log
          ? this.serveLog(method, parsed.resource, parsed.namespace!, parsed.name!, url.searchParams)
          : this.serve(method, parsed, url.searchParams, Buffer.concat(chunks));
        reply(status, body);
      } catch (err) {
        if (!(err instanceof BadRequest)) throw err;
        reply(400, failure(400, 'BadRequest', err.message));
      }
    });
  }

  private serve(method: string, p: ParsedPath, query: URLSearchParams, body: Buffer): [number, unknown] {
    const r = p.resource;
    const verb = method === 'GET' ? (p.name === undefined ? 'list' : 'get') : method === 'POST' ? 'create' : method === 'DELETE' ? 'delete' : '';
    if (!verb || (verb === 'create' && p.name !== undefined) || ((verb === 'create' || verb === 'delete') && !r.writable)) {
      return [405, failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {})];
    }
    const denied = this.forbiddenStatus(verb, r, r.plural, p.namespace, verb === 'create' ? undefined : p.name);
    if (denied) return [403, denied];
    const outage = this.outages.find((o) => o.verb === verb && o.resource === r.plural && o.left > 0);
    if (outage) {
      outage.left--;
      return [503, failure(503, 'ServiceUnavailable', 'the server is currently unable to handle the request', {})];
    }

    if (verb === 'list') {
      const labels = labelFilter(query.get('labelSelector'));
      const fields = fieldFilter(r, query.get('fieldSelector'));
      const prefix = this.key(r, p.namespace, '');
      const items = [...this.objects.entries()]
        .filter(([k, o]) => (p.namespace === undefined ? k.startsWith(`${r.group}/${r.plural}/`) : k.startsWith(prefix)) && labels(o.metadata.labels ?? {}) && fields(o))
        .map(([, o]) => {
          // Lists of built-in types carry kind/apiVersion once, on the list; custom resources keep them.
          const item: Record<string, unknown> = structuredClone(o);
          if (!r.group.includes('.')) {
            delete item.kind;
            delete item.apiVersion;
          }
          return item;
        });
      return [200, { kind: `${r.kind}List`, apiVersion: apiVersionOf(r), metadata: { resourceVersion: String(this.resourceVersion) }, items }];
    }
    if (verb === 'get') {
      const obj = this.objects.get(this.key(r, p.namespace, p.name!));
      return obj ? [200, obj] : [404, notFound(r, p.name!)];
    }
    if (verb === 'create') return this.create(r, p.namespace, body);

    const key = this.key(r, p.namespace, p.name!);
    const obj = this.objects.get(key);
    if (!obj) return [404, notFound(r, p.name!)];
    this.objects.delete(key);
    if (r.plural === 'namespaces') {
      // The namespace controller's work, done at once: everything in it goes too.
      for (const k of [...this.objects.keys()]) if (k.split('/')[2] === p.name) this.objects.delete(k);
      return [200, { ...obj, status: { phase: 'Terminating' } }];
    }
    return [200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name: p.name, group: r.group, kind: r.plural, uid: obj.metadata.uid } }];
  }

  private create(r: Resource, namespace: string | undefined, body: Buffer): [number, unknown] {
    let obj: KubeObject;
    try {
      obj = JSON.parse(body.toString('utf8')) as KubeObject;
    } catch {
      throw new BadRequest('the body of the request was in an unknown format');
    }
    if (obj.apiVersion !== apiVersionOf(r) || obj.kind !== r.kind) {
      throw new BadRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${apiVersionOf(r)})`);
    }
    obj.metadata ??= {};
    if (namespace !== undefined && obj.metadata.namespace !== undefined && obj.metadata.namespace !== namespace) {
      throw new BadRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    if (!obj.metadata.name && typeof obj.metadata.generateName === 'string') {
      obj.metadata.name = `${obj.metadata.generateName}${randomBytes(4).toString('hex').slice(0, 5)}`;
    }
    const name = obj.metadata.name;
    if (!name) return [422, failure(422, 'Invalid', `${r.kind} "" is invalid: metadata.name: Required value: name or generateName is required`)];
    if (this.objects.has(this.key(r, namespace, name))) {
      return [409, failure(409, 'AlreadyExists', `${qualified(r)} "${name}" already exists`, { name, ...(r.group ? { group: r.group } : {}), kind: r.plural })];
    }
    if (namespace !== undefined) obj.metadata.namespace = namespace;
    return [201, this.put(obj)];
  }

  // ---- logs ----

  /**
   * In the API server's order: RBAC, the options' validation (422), the pod (404), the container
   * (400); then the kubelet's answer: the log, tailed then limited, or why the container has none.
   */
  private serveLog(method: string, r: Resource, namespace: string, name: string, query: URLSearchParams): [number, unknown] {
    if (method !== 'GET') return [405, failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {})];
    const denied = this.forbiddenStatus('get', r, 'pods/log', namespace, name);
    if (denied) return [403, denied];
    const outage = this.outages.find((o) => o.verb === 'get' && o.resource === 'pods/log' && o.left > 0);
    if (outage) {
      outage.left--;
      return [503, failure(503, 'ServiceUnavailable', 'the server is currently unable to handle the request', {})];
    }
    const integer = (param: string): number | undefined => {
      const v = query.get(param);
      if (v === null) return undefined;
      if (!/^[+-]?\d+$/.test(v)) throw new BadRequest(`strconv.ParseInt: parsing ${JSON.stringify(v)}: invalid syntax`);
      return Number(v);
    };
    const tailLines = integer('tailLines');
    const limitBytes = integer('limitBytes');
    const invalid: Array<{ field: string; message: string }> = [];
    if (tailLines !== undefined && tailLines < 0) invalid.push({ field: 'tailLines', message: `Invalid value: ${tailLines}: must be greater than or equal to 0` });
    if (limitBytes !== undefined && limitBytes < 1) invalid.push({ field: 'limitBytes', message: `Invalid value: ${limitBytes}: must be greater than 0` });
    if (invalid.length) {
      const listed = invalid.map((e) => `${e.field}: ${e.message}`);
      return [
        422,
        failure(422, 'Invalid', `PodLogOptions "${name}" is invalid: ${listed.length === 1 ? listed[0] : `[${listed.join(', ')}]`}`, {
          name,
          kind: 'PodLogOptions',
          causes: invalid.map((e) => ({ reason: 'FieldValueInvalid', message: e.message, field: e.field })),
        }),
      ];
    }
    const pod = this.objects.get(this.key(r, namespace, name));
    if (!pod) return [404, notFound(r, name)];

    type Named = { name: string };
    const spec = (pod.spec ?? {}) as { containers?: Named[]; initContainers?: Named[]; ephemeralContainers?: Named[]; nodeName?: string };
    // Listed in the order the API server visits them: init containers first.
    const names = [...(spec.initContainers ?? []), ...(spec.containers ?? []), ...(spec.ephemeralContainers ?? [])].map((c) => c.name);
    let container = query.get('container') ?? '';
    if (!container) {
      // Only the regular containers count: one of them is the default even beside init containers.
      if ((spec.containers ?? []).length !== 1) {
        const choose = spec.containers?.length ? `, choose one of: [${names.join(' ')}]` : '';
        return [400, failure(400, 'BadRequest', `a container name must be specified for pod ${name}${choose}`)];
      }
      container = spec.containers![0]!.name;
    } else if (!names.includes(container)) {
      return [400, failure(400, 'BadRequest', `container ${container} is not valid for pod ${name}`)];
    }

    const text = this.logs.get(`${namespace}/${name}/${container}`);
    if (text === undefined) {
      // An unscheduled pod has no kubelet to ask: the API server answers 204 without a body.
      if (!spec.nodeName) return [204, undefined];
      const why = neverRan(pod, container);
      if (why === undefined) return [200, Buffer.alloc(0)];
      return [400, failure(400, 'BadRequest', `container ${JSON.stringify(container)} in pod ${JSON.stringify(name)} ${why}`)];
    }
    let out = text;
    if (tailLines !== undefined) {
      // The last N lines; a last line without its newline counts as one, as the kubelet's tail does.
      let start = out.length;
      for (let n = 0; n < tailLines && start > 0; n++) {
        start = start >= 2 ? out.lastIndexOf(0x0a, start - 2) + 1 : 0; // a negative offset would count from the end
      }
      out = out.subarray(start);
    }
    if (limitBytes !== undefined) out = out.subarray(0, limitBytes);
    return [200, Buffer.from(out)];
  }

  // ---- exec ----

  /** Answers an upgrade request without upgrading, as the API server does before a session starts. */
  private refuse(socket: Socket, req: IncomingMessage, url: URL, status: number, body?: Status): void {
    this.requests.push({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, status });
    const text = body ? JSON.stringify(body) : '';
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
        (body ? 'Content-Type: application/json\r\n' : '') +
        `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
    );
  }

  private upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    if (!this.authorized(req)) return this.refuse(socket, req, url, 401, failure(401, 'Unauthorized', 'Unauthorized'));
    const p = parsePath(url.pathname);
    if (!p || p.resource.plural !== 'pods' || p.subresource !== 'exec' || p.name === undefined || p.namespace === undefined) {
      return this.refuse(socket, req, url, 404, NO_SUCH_RESOURCE);
    }
    const { namespace, name } = p as { namespace: string; name: string };
    const denied = this.forbiddenStatus('create', p.resource, 'pods/exec', namespace, name);
    if (denied) return this.refuse(socket, req, url, 403, denied);
    const pod = this.objects.get(this.key(p.resource, namespace, name));
    if (!pod) return this.refuse(socket, req, url, 404, notFound(p.resource, name));

    const q = url.searchParams;
    const command = q.getAll('command');
    const wants = (s: string) => q.get(s) === 'true' || q.get(s) === '1';
    const streams = { stdin: wants('stdin'), stdout: wants('stdout'), stderr: wants('stderr') };
    const spec = (pod.spec ?? {}) as { containers?: Array<{ name: string }>; initContainers?: Array<{ name: string }> };
    const names = [...(spec.containers ?? []), ...(spec.initContainers ?? [])].map((c) => c.name);
    let container = q.get('container') ?? '';
    if (!container) {
      if (names.length !== 1) {
        return this.refuse(socket, req, url, 400, failure(400, 'BadRequest', `a container name must be specified for pod ${name}, choose one of: [${names.join(' ')}]`));
      }
      container = names[0]!;
    }
    if (!names.includes(container)) return this.refuse(socket, req, url, 400, failure(400, 'BadRequest', `container ${container} is not valid for pod ${name}`));
    if (command.length === 0) return this.refuse(socket, req, url, 400, failure(400, 'BadRequest', 'you must specify at least 1 command'));
    if (!streams.stdin && !streams.stdout && !streams.stderr) {
      return this.refuse(socket, req, url, 400, failure(400, 'BadRequest', 'you must specify at least 1 of stdin, stdout, stderr'));
    }
    // Like the API server's wsstream: the first protocol in the client's list that we support.
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    const protocol = offered.find((o) => this.protocols.includes(o));
    if (!protocol) return this.refuse(socket, req, url, 403);

    this.negotiated.set(req, protocol);
    this.requests.push({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, status: 101 });
    const record: ExecRecord = { namespace, pod: name, container, command, protocol, stdinBytes: 0, stdinClosed: false, stdoutBytes: 0, openedAt: Date.now() };
    this.execs.push(record);
    const fault = this.faults.find((f) => (!f.onlyCommand || command.includes(f.onlyCommand)) && (!f.onlyPod || f.onlyPod === name));
    const target = this.handlers.get(`${namespace}/${name}/${container}`)?.(command);
    const stdout = target && streams.stdout && !fault?.hang ? stdoutPair() : Promise.resolve(undefined);
    stdout.then(
      (out) =>
        this.wss.handleUpgrade(req, socket, head, (ws) => {
          ws.on('close', () => (record.closedAt = Date.now()));
          if (fault?.hang) return;
          this.session(ws, record, streams, target, fault, out);
        }),
      (err: Error) => socket.destroy(err),
    );
  }

  private session(
    ws: WebSocket,
    record: ExecRecord,
    streams: { stdin: boolean; stdout: boolean; stderr: boolean },
    target: ExecTarget | undefined,
    fault: ExecFault | undefined,
    out: StdoutPair | undefined,
  ): void {
    const v5 = record.protocol === V5;
    let inFlight = 0;
    let outputPaused = false;
    let cut = false;
    /** The client went away before the process exited: its output is no longer read. */
    let gone = false;
    let child: ChildProcess | undefined;

    // Output waits while more than HIGH_WATER bytes are queued on the socket: the kubelet's copy blocks the same way.
    const setOutputPaused = (pause: boolean) => {
      if (pause === outputPaused || !child || gone) return;
      outputPaused = pause;
      for (const s of [out?.reader, child.stderr]) if (s) pause ? s.pause() : s.resume();
    };
    // Frames are built in reused buffers (the channel byte, then the data): a fresh buffer per 64 KiB
    // pipe read made this process's garbage collector a large share of a benchmark's CPU.
    const send = (channel: number, data: Buffer, done?: () => void) => {
      const spare = data.length < FRAME_BUFFER ? frameBuffers.pop() ?? Buffer.allocUnsafe(FRAME_BUFFER) : undefined;
      const frame = spare ? spare.subarray(0, data.length + 1) : Buffer.allocUnsafe(data.length + 1);
      frame[0] = channel;
      data.copy(frame, 1);
      inFlight += frame.length;
      ws.send(frame, () => {
        if (spare && frameBuffers.length < 64) frameBuffers.push(spare);
        inFlight -= frame.length;
        if (inFlight < HIGH_WATER / 2) setOutputPaused(false);
        done?.();
      });
      if (inFlight > HIGH_WATER) setOutputPaused(true);
    };
    const finish = (status: Record<string, unknown>) => {
      if (cut || ws.readyState !== ws.OPEN) return;
      send(3, Buffer.from(JSON.stringify({ metadata: {}, ...status })));
      ws.close(1000);
    };

    send(streams.stdout ? 1 : streams.stderr ? 2 : 3, Buffer.alloc(0));
    if (!target) {
      const message = `error executing command in container: failed to exec in container: failed to start exec "${randomBytes(32).toString('hex')}": OCI runtime exec failed: exec failed: unable to start container process: exec: "${record.command[0]}": executable file not found in $PATH: unknown`;
      finish({ status: 'Failure', message: `Internal error occurred: ${message}`, reason: 'InternalError', details: { causes: [{ message }] }, code: 500 });
      return;
    }
    child = spawn(target.file, target.args ?? [], {
      cwd: target.cwd,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...target.env },
      stdio: [streams.stdin ? 'pipe' : 'ignore', out ? out.writer : 'ignore', streams.stderr ? 'pipe' : 'ignore'],
    });
    const proc = child;
    record.pid = proc.pid;
    this.children.add(proc);
    out?.writer.destroy(); // the process holds its own copy: the reader sees EOF when it exits
    proc.stdin?.on('error', () => undefined); // a command that exits without reading its stdin
    if (out) {
      // Each chunk is a view of the reader's buffer: send() copies it into a frame before returning.
      out.sink = (chunk: Buffer) => {
        if (cut) return;
        const limit = fault?.cutAfterStdoutBytes;
        if (limit !== undefined && record.stdoutBytes + chunk.length >= limit) {
          cut = true;
          const part = chunk.subarray(0, limit - record.stdoutBytes);
          record.stdoutBytes += part.length;
          proc.kill('SIGKILL');
          out.reader.destroy();
          send(1, part, () => ws.terminate());
          return;
        }
        record.stdoutBytes += chunk.length;
        send(1, chunk);
      };
      out.reader.on('error', () => undefined); // a reset when the process is killed; 'close' follows
    }
    proc.stderr?.on('data', (chunk: Buffer) => {
      if (!cut) send(2, chunk);
    });
    let ended = false;
    // The exit status goes out once the process has exited and all its stdout has been sent.
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let stdoutOpen = out !== undefined;
    proc.on('error', (err: NodeJS.ErrnoException) => {
      if (ended) return;
      ended = true;
      out?.reader.destroy();
      const message = `error executing command in container: failed to exec in container: ${err.message}`;
      finish({ status: 'Failure', message: `Internal error occurred: ${message}`, reason: 'InternalError', details: { causes: [{ message }] }, code: 500 });
    });
    const exited = () => {
      if (ended || !exit || stdoutOpen) return;
      ended = true;
      const exitCode = exitCodeOf(exit.code, exit.signal);
      if (exitCode === 0) return finish({ status: 'Success' });
      // The API server's translator (v5) and the kubelet (v4) word the message differently.
      const detail = v5 ? `command terminated with exit code ${exitCode}` : `error executing command [${record.command.join(' ')}], exit code ${exitCode}`;
      finish({
        status: 'Failure',
        message: `command terminated with non-zero exit code: ${detail}`,
        reason: 'NonZeroExitCode',
        details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
      });
    };
    proc.on('exit', (code: number | null, signal: NodeJS.Signals | null) => {
      record.exitCode = exitCodeOf(code, signal);
      record.exitedAt = Date.now();
      // Its pipes go with it, as the runtime's do: nothing holds the stand-in open for output never read.
      if (gone) for (const s of [out?.reader, proc.stderr]) s?.destroy();
    });
    proc.on('close', (code: number | null, signal: NodeJS.Signals | null) => {
      this.children.delete(proc);
      exit = { code, signal };
      exited();
    });
    out?.reader.on('close', () => {
      stdoutOpen = false;
      exited();
    });

    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary || data.length === 0) return;
      if (data[0] === 0 && proc.stdin && !proc.stdin.writableEnded) {
        record.stdinBytes += data.length - 1;
        if (!proc.stdin.write(data.subarray(1))) {
          ws.pause();
          proc.stdin.once('drain', () => ws.resume());
        }
      } else if (data[0] === 255 && data[1] === 0 && v5) {
        record.stdinClosed = true;
        proc.stdin?.end();
      }
    });
    ws.on('close', () => {
      if (ended || record.exitedAt !== undefined) return out?.reader.destroy();
      // As the kubelet and the container runtime do when the client disconnects: the process is
      // not signalled; its stdin is closed (if the exec has one), and its output is no longer read
      // (a process that keeps writing blocks once the pipes are full: containerd's shim keeps them
      // open). It runs on until it exits by itself; close() kills what is left.
      gone = true;
      proc.stdin?.end();
      for (const s of [out?.reader, proc.stderr]) s?.pause();
    });
  }
}

interface ContainerStatus {
  name: string;
  state?: { waiting?: { reason?: string }; running?: unknown; terminated?: unknown };
  lastState?: { terminated?: unknown };
}

/**
 * Why the kubelet has no log for a container without one set (undefined: it ran and printed
 * nothing). Without a status for it, it waits for the pod's init containers, as a restored pod's do.
 */
function neverRan(pod: KubeObject, container: string): string | undefined {
  const status = (pod.status ?? {}) as { containerStatuses?: ContainerStatus[]; initContainerStatuses?: ContainerStatus[]; ephemeralContainerStatuses?: ContainerStatus[] };
  const found = [...(status.containerStatuses ?? []), ...(status.initContainerStatuses ?? []), ...(status.ephemeralContainerStatuses ?? [])].find((c) => c.name === container);
  if (!found) return 'is waiting to start: PodInitializing';
  const { waiting, running, terminated } = found.state ?? {};
  if (running || terminated || found.lastState?.terminated) return undefined;
  if (!waiting) return 'is waiting to start - no logs yet';
  if (waiting.reason === 'ErrImagePull') return "is waiting to start: image can't be pulled";
  if (waiting.reason === 'ImagePullBackOff') return 'is waiting to start: trying and failing to pull image';
  return `is waiting to start: ${waiting.reason ?? ''}`;
}

/** As a shell reports it: 128 + the signal's number for a process a signal ended. */
const exitCodeOf = (code: number | null, signal: NodeJS.Signals | null): number => code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);

export async function startKubeApi(options?: { token?: string; protocols?: string[]; user?: string }): Promise<KubeApiServer> {
  return new KubeApiServer(options).listen();
}

/** A pod object with these containers, for put(). */
export function makePod(namespace: string, name: string, containers: string[], extra: { labels?: Record<string, string>; ownerReferences?: unknown[]; phase?: string } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: extra.labels ?? {}, ...(extra.ownerReferences ? { ownerReferences: extra.ownerReferences } : {}) },
    spec: { containers: containers.map((c) => ({ name: c, image: `example/${c}:1` })), nodeName: 'node-1' },
    status: { phase: extra.phase ?? 'Running' },
  };
}

/**
 * The BackupStorageLocation "default" in namespace velero and its credential Secret (an AWS shared
 * credentials file), as `velero install` makes them for an S3-compatible bucket.
 */
export function putS3Location(
  api: KubeApiServer,
  s3: { bucket: string; prefix: string; endpoint: string; region: string; accessKeyId: string; secretAccessKey: string },
): void {
  api.put({
    apiVersion: 'velero.io/v1',
    kind: 'BackupStorageLocation',
    metadata: { name: 'default', namespace: 'velero' },
    spec: {
      provider: 'aws',
      objectStorage: { bucket: s3.bucket, prefix: s3.prefix },
      credential: { name: 'cloud-credentials', key: 'cloud' },
      config: { region: s3.region, s3Url: s3.endpoint, s3ForcePathStyle: 'true', checksumAlgorithm: '' },
    },
  });
  const ini = `[default]\naws_access_key_id = ${s3.accessKeyId}\naws_secret_access_key = ${s3.secretAccessKey}\n`;
  api.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'cloud-credentials', namespace: 'velero' }, data: { cloud: Buffer.from(ini).toString('base64') } });
}
