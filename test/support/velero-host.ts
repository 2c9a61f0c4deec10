/** Runs the Go Velero host harness (test/velero-host) against a plugin executable. */
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { paths } from './components.js';

export interface HostCheck {
  name: string;
  plugin?: string;
  ok: boolean;
  message: string;
}

export interface HostReport {
  ok: boolean;
  checks: HostCheck[];
  plugins: Array<{ name: string; kind: string; command: string; exercised: boolean }>;
}

export interface HostRun {
  status: number | null;
  report: HostReport;
  output: string;
}

/** `hostFlags` go before `--`; `pluginArgv` after the plugin path (Velero's server flags). */
export function runVeleroHost(plugin: string, hostFlags: string[] = [], pluginArgv: string[] = [], options: SpawnSyncOptions = {}): HostRun {
  const reportFile = join(mkdtempSync(join(tmpdir(), 'velero-host-')), 'report.json');
  const res = spawnSync(paths.veleroHost, ['-report', reportFile, ...hostFlags, '--', plugin, ...pluginArgv], {
    encoding: 'utf8',
    timeout: 180_000,
    ...options,
  });
  let report: HostReport;
  try {
    report = JSON.parse(readFileSync(reportFile, 'utf8')) as HostReport;
  } catch {
    report = { ok: false, checks: [], plugins: [] };
  }
  return { status: res.status, report, output: `${String(res.stdout ?? '')}${String(res.stderr ?? '')}` };
}

export function failedChecks(report: HostReport): string[] {
  return report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.message}`);
}

/** A gRPC ResourceIdentifier as returned by Execute. */
export interface ResourceRef {
  group: string;
  resource: string;
  namespace: string;
  name: string;
}

/** One JSON log line the plugin wrote on stderr, verbatim. */
export interface PluginLogLine {
  '@level': string;
  '@message': string;
  [field: string]: unknown;
}

/** An answer to Progress: every field Velero copies from OperationProgress. */
export interface OperationProgressResult {
  completed: boolean;
  /** The operation's failure ('' if none): Velero fails the item with it. */
  err: string;
  nCompleted: number;
  nTotal: number;
  operationUnits: string;
  description: string;
  /** RFC 3339, absent when the plugin left the timestamp unset. */
  started?: string;
  updated?: string;
  /** Progress itself failed: the gRPC status message. */
  error?: string;
}

/** OUT.json of `velero-host -call` (test/velero-host/call.go), plus the harness's own output. */
export interface CallResult {
  /** The call (Execute, or Progress/Cancel with progressOf/cancelOf) returned without a gRPC error; otherwise `error` is the status message, `code` its code name. */
  ok: boolean;
  error: string;
  code: string;
  /** The returned item (null for delete, or when the plugin returned no/unparsable bytes). */
  item: Record<string, unknown> | null;
  /** What Velero would find wrong with the returned item ('' if nothing). */
  itemProblem: string;
  additionalItems: ResourceRef[];
  /** BackupItemActionV2 only. */
  postOperationItems: ResourceRef[];
  operationID: string;
  /** RestoreItemActionV2 only. */
  skipRestore: boolean;
  waitForAdditionalItems: boolean;
  /** Go duration string, '' when unset. */
  additionalItemsReadyTimeout: string;
  /** Duration of the call made (Execute, Progress or Cancel). */
  executeMs: number;
  /**
   * BackupItemActionV2 with an operationID: Progress asked once, as Velero does after the last item;
   * restore with `progressOf`: the answer to that Progress. Null otherwise.
   */
  progress: OperationProgressResult | null;
  /** Every stderr line that is a JSON object, in order. */
  logs: PluginLogLine[];
  /** Every other stderr line. */
  stderrOther: string[];
  /** Lines breaking Velero's log-line rules (non-JSON lines included); a correct plugin has none. */
  logViolations: string[];
  /** The Execute calls on `alsoItems`, made at the same time as the main one, in their order. */
  concurrent: Array<Pick<CallResult, 'ok' | 'error' | 'code' | 'item' | 'itemProblem' | 'executeMs'>>;
  /** The plugin's exit code (-1: ended by a signal). */
  exitCode: number | null;
  /** '' when the plugin exited 0 within 2 s of Shutdown; otherwise what happened. */
  shutdown: string;
  /** Set only when the harness itself failed (callAction then rejects). */
  harnessError?: string;
  /** The harness's own stderr (and, with `verbose`, the plugin's raw stderr). */
  output: string;
}

export interface CallOptions {
  call: 'backup' | 'delete' | 'restore';
  /** e.g. velero-plugin-victoria.io/pod-backup */
  pluginName: string;
  /** Objects are sent as JSON (re-marshalled the way Velero does); a string or Buffer is sent verbatim if it is not JSON. Required unless progressOf or cancelOf is given. */
  item?: unknown;
  /** The Backup (backup, delete); not sent for restore. */
  backup?: unknown;
  /** The Restore (restore). */
  restore?: unknown;
  /** The item as stored in the backup (restore); default: `item`. */
  itemFromBackup?: unknown;
  /**
   * Restore only: instead of Execute, call Progress on this operationID with `restore`, as Velero's
   * restore operations controller does every 10 s from a fresh plugin process; see `progress`.
   */
  progressOf?: string;
  /** Restore only: instead of Execute, call Cancel on this operationID (Velero does on the operation's timeout); see `ok`. */
  cancelOf?: string;
  /** Further items (backup) whose Execute runs at the same time in the same plugin process, as Velero's item-block workers call it. */
  alsoItems?: unknown[];
  /** Merged over process.env for the harness, whose environment the plugin inherits; undefined removes a variable. */
  env?: Record<string, string | undefined>;
  /** Execute timeout (default 600 s); the harness is killed 60 s after it. */
  timeoutMs?: number;
  /** Velero server flags after the plugin path (default: the harness's Velero-like set). */
  pluginArgv?: string[];
  /** Echo the plugin's raw stderr and go-plugin's debug log into `output`. */
  verbose?: boolean;
}

/** Thrown when the harness could not make the call (plugin did not start, handshake, bad flags...). */
export class VeleroHostCallError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly output: string,
    readonly result?: CallResult,
  ) {
    super(message);
    this.name = 'VeleroHostCallError';
  }
}

function documentBytes(doc: unknown): string | Buffer {
  return typeof doc === 'string' || Buffer.isBuffer(doc) ? doc : JSON.stringify(doc);
}

/**
 * One Execute call (or Progress/Cancel, with progressOf/cancelOf) through the Go harness, launched
 * as Velero launches the plugin. Asynchronous (`spawn`): tests run servers in this process whose
 * output must keep flowing meanwhile. Resolves whatever the plugin returned (assert on `ok`);
 * rejects with VeleroHostCallError when the harness could not make the call.
 */
export async function callAction(plugin: string, opts: CallOptions): Promise<CallResult> {
  const { call } = opts;
  if ((call === 'backup' || call === 'delete') && opts.backup === undefined) throw new Error(`callAction ${call}: backup is required`);
  if (call === 'restore' && opts.restore === undefined) throw new Error('callAction restore: restore is required');
  const operation = opts.progressOf !== undefined || opts.cancelOf !== undefined;
  if (operation && call !== 'restore') throw new Error(`callAction ${call}: progressOf and cancelOf are for restore`);
  if (!operation && opts.item === undefined) throw new Error(`callAction ${call}: item is required`);
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const dir = await mkdtemp(join(tmpdir(), 'velero-host-call-'));
  try {
    const args = ['-call', call, '-plugin-name', opts.pluginName, '-out', join(dir, 'out.json'), '-timeout', `${timeoutMs}ms`];
    if (opts.verbose) args.push('-v');
    if (opts.progressOf !== undefined) args.push('-progress-of', opts.progressOf);
    if (opts.cancelOf !== undefined) args.push('-cancel-of', opts.cancelOf);
    const docs: Array<[flag: string, doc: unknown]> = [
      ['-item', opts.item],
      ['-backup', call === 'restore' ? undefined : opts.backup],
      ['-restore', opts.restore],
      ['-item-from-backup', opts.itemFromBackup],
      ...(opts.alsoItems ?? []).map((doc): [string, unknown] => ['-also-item', doc]),
    ];
    for (const [flag, doc] of docs) {
      if (doc === undefined) continue;
      const file = join(dir, `${flag.slice(1)}-${args.length}.json`);
      await writeFile(file, documentBytes(doc));
      args.push(flag, file);
    }
    args.push('--', plugin, ...(opts.pluginArgv ?? []));

    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const [k, v] of Object.entries(opts.env ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    const { status, output } = await new Promise<{ status: number | null; output: string }>((resolve, reject) => {
      const child = spawn(paths.veleroHost, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      const chunks: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => chunks.push(b));
      child.stderr.on('data', (b: Buffer) => chunks.push(b));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 60_000);
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: code, output: signal ? `${text}velero-host killed by ${signal}\n` : text });
      });
    });
    let result: CallResult | undefined;
    try {
      result = { ...(JSON.parse(await readFile(join(dir, 'out.json'), 'utf8')) as Omit<CallResult, 'output'>), output };
    } catch {
      result = undefined;
    }
    if (status !== 0 || !result) {
      const why = result?.harnessError ?? (status === 0 ? 'no result file' : `exit status ${status}`);
      throw new VeleroHostCallError(`velero-host -call ${call} ${opts.pluginName}: ${why}\n${output}`, status, output, result);
    }
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
