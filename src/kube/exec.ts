/**
 * Runs a command in a pod's container over the API server's WebSocket exec protocol, as
 * `kubectl exec` does: stdin in, stdout out with backpressure, the exit code from the error channel.
 *
 * Written on `ws` directly rather than client-node's `Exec`: that one writes every stdout frame into
 * the consumer without looking at `write()`'s answer, so a tar stream of a gigabyte would pile up in
 * memory behind a slow upload; and on v4 it closes the whole socket when stdin ends. Here the socket
 * is paused while the consumer is full, so at most a few frames are buffered.
 *
 * Protocols (subprotocol negotiation, client's order wins): `v5.channel.k8s.io` (API servers from
 * 1.30: stdin can be closed with the CLOSE frame [255, 0]) and `v4.channel.k8s.io` (older ones: stdin
 * stays open until the end, so commands must not wait for EOF there). On both, the end of the
 * connection closes the command's stdin: a command that was sent stdin and never its close can take
 * EOF as "the client has gone" (`keepStdinOpen`). Every frame is one channel
 * byte followed by data: 0 stdin, 1 stdout, 2 stderr, 3 the exit status as a JSON `Status`.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { RequestOptions } from 'node:https';
import { finished, type Writable } from 'node:stream';
import WebSocket from 'ws';
import { describeAnswer, ExecError, parseStatus, socketReason, UNAUTHORIZED_HINT, type ApiStatus } from './errors.js';

const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;
export type ExecProtocol = (typeof EXEC_PROTOCOLS)[number];

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const STATUS = 3;
const CLOSE = 255;

const STDIN_FRAME = 64 * 1024;
/** The API server sends frames of at most 32 KiB; anything far larger is not a Kubernetes server. */
const MAX_FRAME = 16 * 1024 * 1024;
const STDERR_TAIL = 64 * 1024;
/** The part of the stderr tail quoted in messages: enough for a stack trace, short enough for a log line. */
const STDERR_IN_MESSAGE = 4 * 1024;
const DEFAULT_MAX_STDOUT = 16 * 1024 * 1024;
/** Load balancers in front of API servers drop idle connections; client-go pings every 5 s for the same reason. */
const KEEPALIVE_MS = 15_000;

export interface ExecOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  pod: string;
  container: string;
  command: readonly string[];
  /** Sent to the command's stdin, then stdin is closed (v5 only: on v4 it stays open) unless `keepStdinOpen`. */
  stdin?: Buffer | string;
  /**
   * Holds stdin open after `stdin` until the exec ends, also on v5: its end then tells the command
   * that we have gone, since Kubernetes does not end an exec'd process when its client disconnects
   * but closes its stdin (docs/companion.md, Cancellation).
   */
  keepStdinOpen?: boolean;
  /**
   * Receives stdout with backpressure. Ended once the command exited 0 and the exec resolves when
   * it has finished; on any failure it is destroyed with the error, so a cut stream never looks
   * like a complete one. Without it, stdout is collected into the result (up to maxStdoutBytes).
   */
  stdout?: Writable;
  /** Limit for collected stdout (default 16 MiB). */
  maxStdoutBytes?: number;
  /** What to do when stdout passes maxStdoutBytes: the caller knows what the command prints, and why it may print more. */
  maxStdoutHint?: string;
  /** Limit for the whole exec, connection to exit status (default none). */
  timeoutMs?: number;
  /** Fail when no frame arrives for this long while we are ready to read (default none). */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface ExecResult {
  protocol: ExecProtocol;
  /** Collected stdout; empty when it went to `options.stdout`. */
  stdout: Buffer;
  stdoutBytes: number;
  /** The last 64 KiB of stderr. */
  stderr: string;
}

function execUrl(server: string, o: ExecOptions): string {
  const query = new URLSearchParams();
  query.set('container', o.container);
  for (const arg of o.command) query.append('command', arg);
  if (o.stdin !== undefined) query.set('stdin', 'true');
  query.set('stdout', 'true');
  query.set('stderr', 'true');
  const base = server.replace(/\/+$/, '').replace(/^http/, 'ws');
  return `${base}/api/v1/namespaces/${encodeURIComponent(o.namespace)}/pods/${encodeURIComponent(o.pod)}/exec?${query}`;
}

const seconds = (ms: number): string => `${Math.round(ms / 100) / 10} s`;

/** The error for an exec the API server refused before the upgrade (its Status, if it sent one). */
function refusal(o: ExecOptions, what: string, httpStatus: number, status: ApiStatus | undefined): ExecError {
  const answer = describeAnswer(httpStatus, status);
  const head = `cannot exec ${what}: ${answer}`;
  switch (httpStatus) {
    case 401:
      return new ExecError('Unauthorized', `${head}; ${UNAUTHORIZED_HINT}`, { status: httpStatus });
    case 403:
      if (!status) {
        return new ExecError('Failed', `${head}: the API server refused the exec protocols ${EXEC_PROTOCOLS.join(', ')}`, { status: httpStatus });
      }
      return new ExecError(
        'Forbidden',
        `${head}; grant create and get on pods/exec (API servers before 1.35 authorize the WebSocket exec as get) and get on pods in namespace ${o.namespace} to the user named above (Velero's service account when the plugin runs in Velero)`,
        { status: httpStatus },
      );
    case 404:
      return new ExecError('NotFound', `${head}; check that the pod exists (it may have been deleted or replaced)`, { status: httpStatus });
    case 400:
      if (/container .* is not valid for pod|container name must be specified/.test(status?.message ?? '')) {
        return new ExecError('NoSuchContainer', `${head}; check the container name: the pod has no container "${o.container}"`, { status: httpStatus });
      }
      return new ExecError('Failed', head, { status: httpStatus });
    default:
      return new ExecError('Failed', head, { status: httpStatus });
  }
}

async function readBody(res: IncomingMessage, limit = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (size < limit) chunks.push(chunk);
      size += chunk.length;
    }
  } catch {
    // A body cut short still says what it says so far.
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

/** The phrases every message about one exec is made of, so that all of them name it the same way. */
interface ExecLabels {
  /** The command alone, as JSON. */
  command: string;
  /** The command and where it runs. */
  what: string;
  /** The connection, for failures of the stream rather than of the command. */
  stream: string;
  /** The API server's URL from the kubeconfig. */
  server: string;
}

/** servername (the kubeconfig's tls-server-name) is not in ws's types, but ws hands it to tls.connect. */
type SocketOptions = WebSocket.ClientOptions & { servername?: string };

/** Runs the command; resolves only when it exited 0 (and `stdout`, if given, has finished). */
export async function execInPod(o: ExecOptions): Promise<ExecResult> {
  const command = `command ${JSON.stringify(o.command)}`;
  const what = `${command} in pod ${o.namespace}/${o.pod} container ${o.container}`;
  const stream = `exec stream to pod ${o.namespace}/${o.pod} container ${o.container}`;
  const server = o.kubeConfig.getCurrentCluster()?.server;
  if (!server) throw new ExecError('Config', `cannot exec ${what}: the kubeconfig's current context has no cluster`);
  const options = await socketOptions(o, what);
  // After the credentials (an exec plugin may take a while): a cancellation meanwhile has fired
  // already, and the session's abort listener would never hear of it.
  if (o.signal?.aborted) throw new ExecError('Aborted', `${what} was cancelled`, { cause: o.signal.reason });

  return new Promise<ExecResult>((resolve, reject) => {
    const ws = new WebSocket(execUrl(server, o), [...EXEC_PROTOCOLS], options);
    new ExecSession(o, { command, what, stream, server }, ws, resolve, reject).start();
  });
}

/** The kubeconfig's credentials and TLS settings, in the form ws takes them. */
async function socketOptions(o: ExecOptions, what: string): Promise<SocketOptions> {
  const tls: RequestOptions = {};
  try {
    await o.kubeConfig.applyToHTTPSOptions(tls);
  } catch (err) {
    throw new ExecError('Config', `cannot exec ${what}: the kubeconfig's credentials failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const headers = Object.fromEntries(Object.entries(tls.headers ?? {}).map(([k, v]) => [k, String(v)]));
  return {
    headers,
    agent: typeof tls.agent === 'object' ? tls.agent : undefined,
    ca: tls.ca,
    cert: tls.cert,
    key: tls.key,
    pfx: tls.pfx,
    passphrase: tls.passphrase,
    rejectUnauthorized: tls.rejectUnauthorized,
    servername: tls.servername,
    perMessageDeflate: false,
    followRedirects: false,
    maxPayload: MAX_FRAME,
  };
}

/** The error for a command that ran and exited non-zero: its exit code and the tail of its stderr. */
function nonZeroExit(what: string, status: ApiStatus, stderr: string): ExecError {
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  const exitCode = Number(cause?.message);
  // A cut can split a character made of two UTF-16 units: made whole again, or the message could not be sent to Velero.
  const tail = stderr.length > STDERR_IN_MESSAGE ? `…${stderr.slice(-STDERR_IN_MESSAGE).toWellFormed()}` : stderr;
  // 128 + 9: killed by SIGKILL, which in a container is the kernel's OOM killer far more often than a person.
  const killed = exitCode === 137 ? " (killed by SIGKILL: most likely the container's memory limit was reached)" : '';
  return new ExecError('NonZeroExit', `${what} exited with code ${Number.isInteger(exitCode) ? exitCode : '?'}${killed}: ${tail || '(nothing on stderr)'}`, {
    exitCode: Number.isInteger(exitCode) ? exitCode : undefined,
    stderr,
  });
}

/** The error for any other exit status: the command could not run, or the status is not one. */
function statusFailure(what: string, status: ApiStatus | undefined, raw: Buffer, stderr: string): ExecError {
  const message = status ? status.message || status.reason || 'no message' : `unreadable exit status ${JSON.stringify(raw.toString('utf8').slice(0, 200))}`;
  return new ExecError('Failed', `${what} failed: ${message}${stderr ? `; stderr: ${stderr.slice(-STDERR_IN_MESSAGE).toWellFormed()}` : ''}`, { stderr });
}

/**
 * One exec, from the WebSocket's upgrade to the exit status. A class because every event of the
 * socket, the consumer and the timers reads and changes the same state, and the exec must settle
 * exactly once, whichever of them comes first.
 */
class ExecSession {
  private readonly maxStdout: number;
  private readonly collected: Buffer[] = [];
  private stderrTail = Buffer.alloc(0);
  private stdoutBytes = 0;
  private protocol: ExecProtocol = EXEC_PROTOCOLS[0];
  private opened = false;
  /** The API server answered the upgrade with an HTTP error: its answer, not the socket's, is the error. */
  private refused = false;
  /** After the exit status nothing on the socket matters any more. */
  private statusReceived = false;
  private settled = false;
  /** The consumer of stdout is full and the socket is paused until it drains. */
  private paused = false;
  private lastFrame = Date.now();
  private idleTimer: NodeJS.Timeout | undefined;
  private keepalive: NodeJS.Timeout | undefined;
  private totalTimer: NodeJS.Timeout | undefined;
  /** A property rather than a method: removeEventListener needs the very function that was added. */
  private readonly onAbort = (): void =>
    this.fail(new ExecError('Aborted', `${this.labels.what} was cancelled`, { cause: this.o.signal?.reason, stderr: this.stderrText() }));

  constructor(
    private readonly o: ExecOptions,
    private readonly labels: ExecLabels,
    private readonly ws: WebSocket,
    private readonly resolve: (result: ExecResult) => void,
    private readonly reject: (err: ExecError) => void,
  ) {
    this.maxStdout = o.maxStdoutBytes ?? DEFAULT_MAX_STDOUT;
  }

  /** Arms the timers and the cancellation, then listens to the consumer and the socket. */
  start(): void {
    const { o, ws } = this;
    const timeoutMs = o.timeoutMs;
    if (timeoutMs !== undefined) {
      this.totalTimer = setTimeout(
        () => this.fail(new ExecError('Timeout', `${this.labels.what} did not finish within ${seconds(timeoutMs)}`, { stderr: this.stderrText() })),
        timeoutMs,
      );
    }
    o.signal?.addEventListener('abort', this.onAbort, { once: true });
    if (o.idleTimeoutMs !== undefined) this.idleTimer = setTimeout(() => this.checkIdle(), o.idleTimeoutMs);
    if (o.stdout) this.watchConsumer(o.stdout);

    ws.on('unexpected-response', (req, res) => this.onRefusal(req, res));
    ws.on('open', () => this.onOpen());
    ws.on('message', (frame: Buffer, isBinary: boolean) => this.onMessage(frame, isBinary));
    ws.on('error', (err: NodeJS.ErrnoException) => this.onError(err));
    ws.on('close', (code: number, reason: Buffer) => this.onClose(code, reason));
  }

  private stderrText(): string {
    return this.stderrTail.toString('utf8').trim();
  }

  private stopStreamTimers(): void {
    clearTimeout(this.idleTimer);
    clearInterval(this.keepalive);
  }

  private cleanup(): void {
    this.stopStreamTimers();
    clearTimeout(this.totalTimer);
    this.o.signal?.removeEventListener('abort', this.onAbort);
  }

  /** Settles with the error; the consumer is destroyed with it so that a cut stream never looks complete. */
  private fail(err: ExecError): void {
    if (this.settled) return;
    this.settled = true;
    this.cleanup();
    this.ws.terminate();
    if (this.o.stdout && !this.o.stdout.destroyed) this.o.stdout.destroy(err);
    this.reject(err);
  }

  private succeed(): void {
    if (this.settled) return;
    this.settled = true;
    this.cleanup();
    this.resolve({ protocol: this.protocol, stdout: Buffer.concat(this.collected), stdoutBytes: this.stdoutBytes, stderr: this.stderrText() });
  }

  // Counted only while we want data: time spent waiting for a slow consumer is not the stream's fault.
  private checkIdle(): void {
    const idleTimeoutMs = this.o.idleTimeoutMs;
    if (this.settled || this.statusReceived || idleTimeoutMs === undefined) return;
    if (this.paused) this.lastFrame = Date.now();
    const left = idleTimeoutMs - (Date.now() - this.lastFrame);
    if (left > 0) {
      this.idleTimer = setTimeout(() => this.checkIdle(), left);
      return;
    }
    this.fail(
      new ExecError(
        'IdleTimeout',
        `${this.labels.what}: nothing arrived for ${seconds(idleTimeoutMs)} (idle timeout) after ${this.stdoutBytes} bytes of stdout; the command or the connection to the API server is stuck`,
        { stderr: this.stderrText() },
      ),
    );
  }

  private watchConsumer(consumer: Writable): void {
    const { what } = this.labels;
    // Stays attached after the exec: fail() destroys the consumer with our error, and an 'error'
    // without a listener would crash the process.
    consumer.on('error', (err) => this.fail(new ExecError('Failed', `${what}: the consumer of its stdout failed: ${err.message}`, { cause: err })));
    consumer.once('close', () => {
      if (!this.statusReceived) this.fail(new ExecError('Failed', `${what}: the consumer of its stdout closed before the command ended`));
    });
  }

  private resumeReading(): void {
    this.paused = false;
    this.lastFrame = Date.now();
    this.ws.resume();
  }

  /** Collects stdout up to the limit, or writes it to the consumer and pauses the socket while it is full. */
  private onStdout(data: Buffer): void {
    const { o } = this;
    this.stdoutBytes += data.length;
    if (!o.stdout) {
      if (this.stdoutBytes > this.maxStdout) {
        const hint = o.maxStdoutHint ? `: ${o.maxStdoutHint}` : '';
        this.fail(new ExecError('Failed', `${this.labels.what} wrote more than ${this.maxStdout} bytes to stdout${hint}`, { stderr: this.stderrText() }));
      } else this.collected.push(data);
      return;
    }
    if (!o.stdout.write(data) && !this.paused) {
      this.paused = true;
      this.ws.pause();
      o.stdout.once('drain', () => this.resumeReading());
    }
  }

  /** Keeps only the tail: a chatty command must not fill memory, and the end is what explains a failure. */
  private onStderr(data: Buffer): void {
    this.stderrTail = Buffer.concat([this.stderrTail, data]);
    if (this.stderrTail.length > STDERR_TAIL) this.stderrTail = this.stderrTail.subarray(this.stderrTail.length - STDERR_TAIL);
  }

  private onStatus(data: Buffer): void {
    this.statusReceived = true;
    this.stopStreamTimers();
    const status = parseStatus(data.toString('utf8'));
    const stderr = this.stderrText();
    if (status?.status === 'Success') return this.finishStdout();
    if (status?.reason === 'NonZeroExitCode') return this.fail(nonZeroExit(this.labels.what, status, stderr));
    this.fail(statusFailure(this.labels.what, status, data, stderr));
  }

  /** The command exited 0: the exec succeeds once the consumer, if any, has taken all of stdout. */
  private finishStdout(): void {
    this.ws.close(1000);
    const consumer = this.o.stdout;
    if (!consumer) return this.succeed();
    finished(consumer, { readable: false }, (err) => {
      if (err) this.fail(new ExecError('Failed', `${this.labels.what}: the consumer of its stdout failed: ${err.message}`, { cause: err }));
      else this.succeed();
    });
    consumer.end();
  }

  /** The API server answered the upgrade with an HTTP error; its body usually holds a Status that says why. */
  private onRefusal(req: ClientRequest, res: IncomingMessage): void {
    this.refused = true;
    readBody(res).then((body) => {
      req.destroy();
      this.fail(refusal(this.o, this.labels.what, res.statusCode ?? 0, parseStatus(body)));
    }, () => undefined);
  }

  private onOpen(): void {
    const { o, ws } = this;
    this.opened = true;
    this.protocol = ws.protocol as ExecProtocol;
    this.keepalive = setInterval(() => ws.ping(), KEEPALIVE_MS);
    if (o.stdin === undefined) return;
    const stdin = typeof o.stdin === 'string' ? Buffer.from(o.stdin) : o.stdin;
    for (let at = 0; at < stdin.length; at += STDIN_FRAME) {
      ws.send(Buffer.concat([Buffer.of(STDIN), stdin.subarray(at, at + STDIN_FRAME)]));
    }
    if (this.protocol === 'v5.channel.k8s.io' && !o.keepStdinOpen) ws.send(Buffer.of(CLOSE, STDIN));
  }

  private onMessage(frame: Buffer, isBinary: boolean): void {
    if (this.settled || this.statusReceived) return;
    this.lastFrame = Date.now();
    // The channel protocols are binary only; the first frame of a session is often empty.
    if (!isBinary || frame.length < 2) return;
    const data = frame.subarray(1);
    switch (frame[0]) {
      case STDOUT:
        return this.onStdout(data);
      case STDERR:
        return this.onStderr(data);
      case STATUS:
        return this.onStatus(data);
      default:
      // CLOSE frames from the server only announce the end of a channel; the status follows.
    }
  }

  /** Before the upgrade the API server was not reached (or the handshake failed); after it, the stream was cut. */
  private onError(err: NodeJS.ErrnoException): void {
    const { command, what, stream, server } = this.labels;
    if (this.settled || this.refused) return;
    if (this.opened) {
      this.fail(
        new ExecError('StreamCut', `${stream} failed: ${err.message} (${command}; ${this.stdoutBytes} bytes of stdout received)`, { cause: err, stderr: this.stderrText() }),
      );
    } else if (err.code) {
      this.fail(new ExecError('Unreachable', `cannot exec ${what}: cannot reach the Kubernetes API server at ${server}: ${socketReason(err)}`, { cause: err }));
    } else {
      this.fail(new ExecError('Failed', `cannot exec ${what}: the WebSocket handshake with ${server} failed: ${err.message}`, { cause: err }));
    }
  }

  private onClose(code: number, reason: Buffer): void {
    if (this.settled || this.refused || this.statusReceived) return;
    const how = reason.length ? `${code} ${reason.toString('utf8')}` : String(code);
    this.fail(
      new ExecError(
        'StreamCut',
        `${this.labels.stream} ended without an exit status (${this.labels.command}; ${this.stdoutBytes} bytes of stdout received; WebSocket close code ${how})`,
        { stderr: this.stderrText() },
      ),
    );
  }
}
