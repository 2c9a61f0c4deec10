/**
 * VictoriaMetrics single-node snapshot API: `/snapshot/create`, `/snapshot/list`,
 * `/snapshot/delete`. Answers are parsed by their `status` field, the way
 * vmbackup does, and cover 1.79.5 (bookworm) through 1.145 (sid) and later:
 * - create: `{"status":"ok","snapshot":"<name>"}`, or the Prometheus alias shape
 *   `{"status":"success","data":{"name":"<name>"}}`;
 * - list: `{"status":"ok","snapshots":[` + one name per line + `]}`: multi-line, but valid JSON;
 * - errors: HTTP 500 `{"status":"error","msg":"…"}`;
 * - delete of a missing snapshot: 200 `{"status":"ok"}` on 1.79, but 500 `cannot find snapshot "<n>"`
 *   since 1.84. Both mean "it is gone", so delete is idempotent here on every version.
 */
import { VictoriaError, VictoriaResponseError } from './errors.js';
import { isUnsupportedPath, LONG_TIMEOUT_MS, type HttpClient } from './http.js';
import { isSnapshotName, snapshotTime } from './snapshot-names.js';
import type { Snapshot } from './types.js';

const VM_PATHS = {
  create: '/snapshot/create',
  list: '/snapshot/list',
  delete: '/snapshot/delete',
} as const;

/** Why a body could not be used; the caller adds the URL. */
class ParseError extends Error {
  override readonly name = 'ParseError';
}

function parseJsonObject(body: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    throw new ParseError(`not JSON: ${JSON.stringify(body.slice(0, 200))}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ParseError(`not a JSON object: ${JSON.stringify(body.slice(0, 200))}`);
  return v as Record<string, unknown>;
}

function errorStatus(j: Record<string, unknown>): string | undefined {
  if (j.status !== 'error') return undefined;
  return typeof j.msg === 'string' ? j.msg : typeof j.error === 'string' ? j.error : '(no message)';
}

/** The snapshot name from a `/snapshot/create` (or `/api/v1/admin/tsdb/snapshot`) answer. */
export function parseVmCreate(body: string): string {
  const j = parseJsonObject(body);
  const err = errorStatus(j);
  if (err !== undefined) throw new ParseError(`server reported an error: ${err}`);
  let name: unknown;
  if (j.status === 'ok') name = j.snapshot;
  else if (j.status === 'success' && j.data !== null && typeof j.data === 'object') name = (j.data as Record<string, unknown>).name;
  else throw new ParseError(`unexpected status ${JSON.stringify(j.status)}`);
  if (typeof name !== 'string' || !isSnapshotName(name)) throw new ParseError(`no valid snapshot name in ${JSON.stringify(body.slice(0, 200))}`);
  return name;
}

/** Snapshot names from a `/snapshot/list` answer, in the server's (ascending) order. */
export function parseVmList(body: string): string[] {
  const j = parseJsonObject(body);
  const err = errorStatus(j);
  if (err !== undefined) throw new ParseError(`server reported an error: ${err}`);
  if (j.status !== 'ok' || !Array.isArray(j.snapshots)) throw new ParseError(`unexpected answer ${JSON.stringify(body.slice(0, 200))}`);
  const names = j.snapshots.filter((n): n is string => typeof n === 'string');
  if (names.length !== j.snapshots.length) throw new ParseError('snapshot list holds non-string entries');
  return names;
}

export type DeleteOutcome = 'deleted' | 'missing';

/**
 * What a `/snapshot/delete` answer means. 1.79 answers a missing (well-formed) name with 200 ok,
 * so there 'deleted' can also mean "was not there"; either way the snapshot is gone.
 * Returns undefined when the answer is an error the caller must report.
 */
export function classifyVmDelete(status: number, body: string): DeleteOutcome | undefined {
  let j: Record<string, unknown> | undefined;
  try {
    j = parseJsonObject(body);
  } catch {
    return undefined;
  }
  if (status === 200 && j.status === 'ok') return 'deleted';
  const msg = errorStatus(j);
  if (msg !== undefined && /cannot find snapshot/i.test(msg)) return 'missing';
  return undefined;
}

/** A VictoriaMetrics snapshot as the engine sees it (types.ts). */
export function vmSnapshot(name: string): Snapshot {
  const createdAt = snapshotTime(name);
  if (!createdAt) throw new TypeError(`not a VictoriaMetrics snapshot name: ${JSON.stringify(name)}`);
  return { kind: 'metrics', name, handle: name, dir: `snapshots/${name}`, relPathPrefix: '', createdAt };
}

/** The snapshot calls, over one HttpClient (which carries the URL, keys and timeouts). */
export class VmSnapshotApi {
  constructor(private readonly http: HttpClient) {}

  /** Creates a snapshot and returns its name. Uses the long timeout: see LONG_TIMEOUT_MS. */
  async create(): Promise<string> {
    const res = await this.http.post(VM_PATHS.create, {}, { key: 'authKey', timeoutMs: LONG_TIMEOUT_MS });
    if (isUnsupportedPath(res)) {
      throw new VictoriaError(
        `VictoriaMetrics POST ${this.http.url(VM_PATHS.create)}: the server has no snapshot API: it is not a single-node VictoriaMetrics. ` +
          `A VictoriaLogs answers this way (then the kind is logs: --kind logs, VICTORIA_KIND=logs); a vminsert/vmselect stores nothing ` +
          `(run the companion beside each vmstorage node): ${this.http.redact(res.body.trim())}${this.http.pathPrefixHint()}`,
        this.http.url(VM_PATHS.create),
      );
    }
    if (res.status !== 200) throw this.http.httpError(VM_PATHS.create, res, 'authKey', 'create snapshot');
    try {
      return parseVmCreate(res.body);
    } catch (err) {
      throw this.bad(VM_PATHS.create, err);
    }
  }

  async list(): Promise<string[]> {
    const res = await this.http.post(VM_PATHS.list, {}, { key: 'authKey' });
    if (res.status !== 200) throw this.http.httpError(VM_PATHS.list, res, 'authKey', 'list snapshots');
    try {
      return parseVmList(res.body);
    } catch (err) {
      throw this.bad(VM_PATHS.list, err);
    }
  }

  /**
   * Deletes one snapshot by name; a missing one is 'missing', not an error. The name is checked
   * first: servers answer an invalid name with a 500 that reads like a server fault.
   */
  async delete(name: string): Promise<DeleteOutcome> {
    if (!isSnapshotName(name)) {
      throw new VictoriaError(
        `VictoriaMetrics snapshot name ${JSON.stringify(name)} is invalid: it must look like YYYYMMDDhhmmss-HEX`,
        this.http.url(VM_PATHS.delete),
      );
    }
    const res = await this.http.post(VM_PATHS.delete, { snapshot: name }, { key: 'authKey' });
    const outcome = classifyVmDelete(res.status, res.body);
    if (outcome === undefined) throw this.http.httpError(VM_PATHS.delete, res, 'authKey', `delete snapshot ${name}`);
    return outcome;
  }

  private bad(path: string, err: unknown): VictoriaResponseError {
    const msg = err instanceof Error ? err.message : String(err);
    return new VictoriaResponseError(`VictoriaMetrics POST ${this.http.url(path)}: ${this.http.redact(msg)}`, this.http.url(path));
  }
}
