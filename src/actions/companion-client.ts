/**
 * The plugin's side of the companion protocol (src/companion/protocol.ts): each call is one exec
 * into the companion container of the pod. Short commands (hooks, the files document) are bounded
 * by `execTimeoutMs` (a pre hook by at least PRE_HOOK_TIMEOUT_MS); tar streams by
 * `streamIdleTimeoutMs` of silence, since a large file legitimately takes long but never stalls;
 * counting by `countTimeoutMs`, as it reads the whole database. Counts and tar streams hold stdin
 * open and ask the companion to stop when it ends (docs/companion.md, Cancellation): the exec's
 * process outlives our disconnect otherwise. Hooks run to their end (a half-made snapshot set would
 * be recorded nowhere), and the files listing is short.
 */
import { PassThrough, type Readable } from 'node:stream';
import { COMPANION_EXIT, COUNTS_CANCEL_LINE, formatTarRequest, parseCompanionCounts, parseCompanionFiles, type CompanionCounts, type CompanionFiles, type CompanionTree } from '../companion/protocol.js';
import type { SnapshotFile } from '../engine/files.js';
import { ExecError } from '../kube/errors.js';
import { execInPod } from '../kube/exec.js';
import type { KubeClient } from '../kube/client.js';
import { EXECUTABLE } from './names.js';

/** `pre.hook.backup.velero.io/timeout` in velero/components and the Schedules' pre hooks. */
const PRE_HOOK_TIMEOUT_MS = 5 * 60_000;

const MiB = 1024 * 1024;
/*
 * Limits for what a command prints. It is collected in Velero's container, where the frames, their
 * join, the string and the parsed document are all held for a moment, beside the backups in
 * flight: the limit of 256 MiB that every command once had could take Velero past its default
 * memory limit of 512 MiB. Each command gets one that fits what it prints.
 */
/** Hooks and counts print one JSON line of a few KiB (a VictoriaLogs count has one number a day, a hook one name a snapshot). */
export const LINE_STDOUT_LIMIT = MiB;

export interface CompanionTarget {
  kube: KubeClient;
  namespace: string;
  pod: string;
  container: string;
  execTimeoutMs: number;
  streamIdleTimeoutMs: number;
  countTimeoutMs: number;
  /** The most MiB of the files document read (the plugin ConfigMap's fileListLimitMiB). */
  fileListLimitMiB: number;
  signal: AbortSignal;
}

/** One exec of a command whose stdout is collected; the target's timeout and signal unless given. */
interface RunOptions {
  maxStdoutBytes: number;
  /** What to do when stdout passes maxStdoutBytes, for the error (exec.ts names the pod, the command and the limit). */
  maxStdoutHint: string;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Sent and held open: its end asks the command to stop (docs/companion.md, Cancellation). */
  stdin?: string;
}

/** The commands that answer with one JSON line: anything much longer is not the companion's answer. */
const LINE_OUTPUT = {
  maxStdoutBytes: LINE_STDOUT_LIMIT,
  maxStdoutHint:
    "it prints one JSON line of a few KiB, so this is not the companion's answer: check that the container runs the companion of this plugin version " +
    '(velero/components/), and that nothing else in it writes to stdout',
} satisfies Pick<RunOptions, 'maxStdoutBytes' | 'maxStdoutHint'>;

/**
 * The files document lists every file of the snapshots with its path, size and mtime: about 100
 * bytes a file, 150 with long paths. The default of 64 MiB (the plugin ConfigMap's
 * fileListLimitMiB) is over 400,000 files, several times what large databases have (a part has 5
 * to 25 files; VictoriaMetrics merges its parts to some hundreds a month, VictoriaLogs to some
 * dozens a day, so only VictoriaLogs with years of retention comes near). Reading that much peaks
 * at about 215 MiB (measured: 686,000 entries of 98 bytes, frames, join, string and parsed
 * objects), 256 MiB at about 830 MiB: about 3.4 times the limit. Past it: more files than a
 * database is expected to have, or a limit set too low.
 */
function filesOutput(limitMiB: number): Pick<RunOptions, 'maxStdoutBytes' | 'maxStdoutHint'> {
  const limit = limitMiB * MiB;
  return {
    maxStdoutBytes: limit,
    maxStdoutHint:
      `the list of the snapshots' files is larger than fileListLimitMiB of the plugin ConfigMap (${limitMiB} MiB; at about 150 bytes a file, ${Math.floor(limit / 150).toLocaleString('en-US')} files or more): ` +
      'if the database has that many files (its /metrics counts its parts, of some 5 to 25 files each), raise fileListLimitMiB, ' +
      "and Velero's memory limit with it: reading the list takes about 3.4 times its size",
  };
}

export class CompanionClient {
  constructor(private readonly t: CompanionTarget) {}

  private async run(args: string[], o: RunOptions): Promise<string> {
    const { t } = this;
    const result = await execInPod({
      kubeConfig: t.kube.kubeConfig,
      namespace: t.namespace,
      pod: t.pod,
      container: t.container,
      command: [EXECUTABLE, 'companion', ...args],
      timeoutMs: o.timeoutMs ?? t.execTimeoutMs,
      maxStdoutBytes: o.maxStdoutBytes,
      maxStdoutHint: o.maxStdoutHint,
      signal: o.signal ?? t.signal,
      ...(o.stdin === undefined ? {} : { stdin: o.stdin, keepStdinOpen: true }),
    });
    return result.stdout.toString('utf8');
  }

  /** The recorded snapshot set, or undefined when none is recorded (the pre hook did not run). */
  async files(): Promise<CompanionFiles | undefined> {
    try {
      return parseCompanionFiles(await this.run(['files'], filesOutput(this.t.fileListLimitMiB)));
    } catch (err) {
      if (err instanceof ExecError && err.exitCode === COMPANION_EXIT.noRecord) return undefined;
      throw err;
    }
  }

  /** The database's counts up to five minutes before the recorded snapshot time (victoria/flat-counts.ts). */
  async counts(): Promise<CompanionCounts> {
    // The companion's query gets the same limit as the exec (its own default is 5 minutes), so a
    // countTimeoutSeconds above that is not cut short, and a count past it stops in the pod too.
    // A count we give up on earlier (the backup failed or ended) stops when stdin ends.
    const seconds = Math.ceil(this.t.countTimeoutMs / 1000);
    return parseCompanionCounts(
      await this.run(['counts', '--timeout', `${seconds}s`], { timeoutMs: this.t.countTimeoutMs, stdin: COUNTS_CANCEL_LINE, ...LINE_OUTPUT }),
    );
  }

  /**
   * Runs a hook; returns its one JSON summary line. `signal` replaces the client's (a cleanup after
   * a cancel). A pre hook gets at least the time Velero's own pre hook has in velero/components:
   * it may wait for the companion's lock and for the database's flush and snapshot.
   */
  async hook(which: 'pre' | 'post', signal?: AbortSignal): Promise<string> {
    const timeoutMs = which === 'pre' ? Math.max(this.t.execTimeoutMs, PRE_HOOK_TIMEOUT_MS) : this.t.execTimeoutMs;
    return (await this.run(['hook', which], { ...(signal ? { signal } : {}), timeoutMs, ...LINE_OUTPUT })).trim();
  }

  /** A tar stream of these files of one tree, in this order (the engine's tar reader checks it). */
  async tar(tree: Pick<CompanionTree, 'prefix' | 'snapshot'>, files: SnapshotFile[], signal: AbortSignal): Promise<Readable> {
    const { t } = this;
    // Small on purpose: a chunk that waits here past a young-generation collection is promoted,
    // and its memory (outside V8's heap) then goes only with a full collection. With 1 MiB the
    // plugin ran about 30 full collections per 1.27 GiB streamed, with 128 KiB 2; the WebSocket
    // is paused while this is full, so the rest waits in the kernel's socket buffer instead.
    const out = new PassThrough({ highWaterMark: 128 << 10 });
    execInPod({
      kubeConfig: t.kube.kubeConfig,
      namespace: t.namespace,
      pod: t.pod,
      container: t.container,
      command: [EXECUTABLE, 'companion', 'tar'],
      stdin: formatTarRequest({ tree: tree.prefix, files: files.map((f) => f.path), ...(tree.snapshot === undefined ? {} : { snapshot: tree.snapshot }), cancelOnStdinEnd: true }),
      // Its end stops the tar in the pod when we stop reading (a failed upload, a cancelled backup).
      keepStdinOpen: true,
      stdout: out,
      idleTimeoutMs: t.streamIdleTimeoutMs,
      signal: AbortSignal.any([t.signal, signal]),
    }).catch((err: unknown) => out.destroy(err as Error)); // execInPod destroys `out` too; this keeps the rejection observed
    return out;
  }
}
