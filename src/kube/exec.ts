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
 * stays open until the end, so commands must not wait for EOF there). Every frame is one channel
 * byte followed by data: 0 stdin, 1 stdout, 2 stderr, 3 the exit status as a JSON `Status`.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { IncomingMessage } from 'node:http';
import type { RequestOptions } from 'node:https';
import { finished, type Writable } from 'node:stream';
import WebSocket from 'ws';
import { describeAnswer, ExecError, parseStatus, socketReason, UNAUTHORIZED_HINT, type ApiStatus } from './errors.js';

export const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;
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
  /** Sent to the command's stdin, then stdin is closed (v5 only: on v4 it stays open). */
  stdin?: Buffer | string;
  /**
   * Receives stdout with backpressure. Ended once the command exited 0 and the exec resolves when
   * it has finished; on any failure it is destroyed with the error, so a cut stream never looks
   * like a complete one. Without it, stdout is collected into the result (up to maxStdoutBytes).
   */
  stdout?: Writable;
  /** Limit for collected stdout (default 16 MiB). */
  maxStdoutBytes?: number;
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
        `${head}; grant create on pods/exec (and get on pods) in namespace ${o.namespace} to the user named above (Velero's service account when the plugin runs in Velero)`,
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

/** Runs the command; resolves only when it exited 0 (and `stdout`, if given, has finished). */
export async function execInPod(o: ExecOptions): Promise<ExecResult> {
  const command = `command ${JSON.stringify(o.command)}`;
  const what = `${command} in pod ${o.namespace}/${o.pod} container ${o.container}`;
  const stream = `exec stream to pod ${o.namespace}/${o.pod} container ${o.container}`;
  if (o.signal?.aborted) throw new ExecError('Aborted', `${what} was cancelled`, { cause: o.signal.reason });
  const server = o.kubeConfig.getCurrentCluster()?.server;
  if (!server) throw new ExecError('Config', `cannot exec ${what}: the kubeconfig's current context has no cluster`);
  const tls: RequestOptions = {};
  try {
    await o.kubeConfig.applyToHTTPSOptions(tls);
  } catch (err) {
    throw new ExecError('Config', `cannot exec ${what}: the kubeconfig's credentials failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const headers = Object.fromEntries(Object.entries(tls.headers ?? {}).map(([k, v]) => [k, String(v)]));

  return new Promise<ExecResult>((resolve, reject) => {
    // servername (the kubeconfig's tls-server-name) is not in ws's types, but ws hands it to tls.connect.
    const options: WebSocket.ClientOptions & { servername?: string } = {
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
    const ws = new WebSocket(execUrl(server, o), [...EXEC_PROTOCOLS], options);
    const maxStdout = o.maxStdoutBytes ?? DEFAULT_MAX_STDOUT;
    const collected: Buffer[] = [];
    let stderrTail = Buffer.alloc(0);
    let stdoutBytes = 0;
    let protocol: ExecProtocol = EXEC_PROTOCOLS[0];
    let opened = false;
    let refused = false;
    let statusReceived = false;
    let settled = false;
    let paused = false;
    let lastFrame = Date.now();
    let idleTimer: NodeJS.Timeout | undefined;
    let keepalive: NodeJS.Timeout | undefined;

    const stderrText = () => stderrTail.toString('utf8').trim();
    const stopStreamTimers = () => {
      clearTimeout(idleTimer);
      clearInterval(keepalive);
    };
    const totalTimer =
      o.timeoutMs === undefined
        ? undefined
        : setTimeout(() => fail(new ExecError('Timeout', `${what} did not finish within ${seconds(o.timeoutMs!)}`, { stderr: stderrText() })), o.timeoutMs);
    const onAbort = () => fail(new ExecError('Aborted', `${what} was cancelled`, { cause: o.signal?.reason, stderr: stderrText() }));
    o.signal?.addEventListener('abort', onAbort, { once: true });

    const cleanup = () => {
      stopStreamTimers();
      clearTimeout(totalTimer);
      o.signal?.removeEventListener('abort', onAbort);
    };
    function fail(err: ExecError): void {
      if (settled) return;
      settled = true;
      cleanup();
      ws.terminate();
      if (o.stdout && !o.stdout.destroyed) o.stdout.destroy(err);
      reject(err);
    }
    const succeed = () => {
      if (settled) return;
      settled = true;
      cleanup();
      resolve({ protocol, stdout: Buffer.concat(collected), stdoutBytes, stderr: stderrText() });
    };

    // Counted only while we want data: time spent waiting for a slow consumer is not the stream's fault.
    const checkIdle = () => {
      if (settled || statusReceived || o.idleTimeoutMs === undefined) return;
      if (paused) lastFrame = Date.now();
      const left = o.idleTimeoutMs - (Date.now() - lastFrame);
      if (left > 0) {
        idleTimer = setTimeout(checkIdle, left);
        return;
      }
      fail(
        new ExecError(
          'IdleTimeout',
          `${what}: nothing arrived for ${seconds(o.idleTimeoutMs)} (idle timeout) after ${stdoutBytes} bytes of stdout; the command or the connection to the API server is stuck`,
          { stderr: stderrText() },
        ),
      );
    };
    if (o.idleTimeoutMs !== undefined) idleTimer = setTimeout(checkIdle, o.idleTimeoutMs);

    if (o.stdout) {
      const consumer = o.stdout;
      // Stays attached after the exec: fail() destroys the consumer with our error, and an 'error'
      // without a listener would crash the process.
      consumer.on('error', (err) => fail(new ExecError('Failed', `${what}: the consumer of its stdout failed: ${err.message}`, { cause: err })));
      consumer.once('close', () => {
        if (!statusReceived) fail(new ExecError('Failed', `${what}: the consumer of its stdout closed before the command ended`));
      });
    }
    const resumeReading = () => {
      paused = false;
      lastFrame = Date.now();
      ws.resume();
    };
    const onStdout = (data: Buffer) => {
      stdoutBytes += data.length;
      if (!o.stdout) {
        if (stdoutBytes > maxStdout) fail(new ExecError('Failed', `${what} wrote more than ${maxStdout} bytes to stdout`, { stderr: stderrText() }));
        else collected.push(data);
        return;
      }
      if (!o.stdout.write(data) && !paused) {
        paused = true;
        ws.pause();
        o.stdout.once('drain', resumeReading);
      }
    };
    const onStderr = (data: Buffer) => {
      stderrTail = Buffer.concat([stderrTail, data]);
      if (stderrTail.length > STDERR_TAIL) stderrTail = stderrTail.subarray(stderrTail.length - STDERR_TAIL);
    };
    const onStatus = (data: Buffer) => {
      statusReceived = true;
      stopStreamTimers();
      const status = parseStatus(data.toString('utf8'));
      const stderr = stderrText();
      if (status?.status === 'Success') {
        ws.close(1000);
        if (!o.stdout) return succeed();
        finished(o.stdout, { readable: false }, (err) => {
          if (err) fail(new ExecError('Failed', `${what}: the consumer of its stdout failed: ${err.message}`, { cause: err }));
          else succeed();
        });
        o.stdout.end();
        return;
      }
      if (status?.reason === 'NonZeroExitCode') {
        const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
        const exitCode = Number(cause?.message);
        const tail = stderr.length > STDERR_IN_MESSAGE ? `…${stderr.slice(-STDERR_IN_MESSAGE)}` : stderr;
        fail(
          new ExecError('NonZeroExit', `${what} exited with code ${Number.isInteger(exitCode) ? exitCode : '?'}: ${tail || '(nothing on stderr)'}`, {
            exitCode: Number.isInteger(exitCode) ? exitCode : undefined,
            stderr,
          }),
        );
        return;
      }
      const message = status ? status.message || status.reason || 'no message' : `unreadable exit status ${JSON.stringify(data.toString('utf8').slice(0, 200))}`;
      fail(new ExecError('Failed', `${what} failed: ${message}${stderr ? `; stderr: ${stderr.slice(-STDERR_IN_MESSAGE)}` : ''}`, { stderr }));
    };

    ws.on('unexpected-response', (req, res) => {
      refused = true;
      readBody(res).then((body) => {
        req.destroy();
        fail(refusal(o, what, res.statusCode ?? 0, parseStatus(body)));
      }, () => undefined);
    });
    ws.on('open', () => {
      opened = true;
      protocol = ws.protocol as ExecProtocol;
      keepalive = setInterval(() => ws.ping(), KEEPALIVE_MS);
      if (o.stdin === undefined) return;
      const stdin = typeof o.stdin === 'string' ? Buffer.from(o.stdin) : o.stdin;
      for (let at = 0; at < stdin.length; at += STDIN_FRAME) {
        ws.send(Buffer.concat([Buffer.of(STDIN), stdin.subarray(at, at + STDIN_FRAME)]));
      }
      if (protocol === 'v5.channel.k8s.io') ws.send(Buffer.of(CLOSE, STDIN));
    });
    ws.on('message', (frame: Buffer, isBinary: boolean) => {
      if (settled || statusReceived) return;
      lastFrame = Date.now();
      // The channel protocols are binary only; the first frame of a session is often empty.
      if (!isBinary || frame.length < 2) return;
      const data = frame.subarray(1);
      switch (frame[0]) {
        case STDOUT:
          return onStdout(data);
        case STDERR:
          return onStderr(data);
        case STATUS:
          return onStatus(data);
        default:
        // CLOSE frames from the server only announce the end of a channel; the status follows.
      }
    });
    ws.on('error', (err: NodeJS.ErrnoException) => {
      if (settled || refused) return;
      if (opened) {
        fail(new ExecError('StreamCut', `${stream} failed: ${err.message} (${command}; ${stdoutBytes} bytes of stdout received)`, { cause: err, stderr: stderrText() }));
      } else if (err.code) {
        fail(new ExecError('Unreachable', `cannot exec ${what}: cannot reach the Kubernetes API server at ${server}: ${socketReason(err)}`, { cause: err }));
      } else {
        fail(new ExecError('Failed', `cannot exec ${what}: the WebSocket handshake with ${server} failed: ${err.message}`, { cause: err }));
      }
    });
    ws.on('close', (code: number, reason: Buffer) => {
      if (settled || refused || statusReceived) return;
      const how = reason.length ? `${code} ${reason.toString('utf8')}` : String(code);
      fail(
        new ExecError(
          'StreamCut',
          `${stream} ended without an exit status (${command}; ${stdoutBytes} bytes of stdout received; WebSocket close code ${how})`,
          { stderr: stderrText() },
        ),
      );
    });
  });
}
