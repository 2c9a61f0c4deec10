/**
 * Whole-object GETs whose bodies are read into a buffer that belongs to the connection: the
 * restore's hot path. Every other HTTP client here (undici, the AWS SDK's node:http handler)
 * allocates a new 64 KiB buffer per socket read; for a restore that is 20 000 allocations per GiB,
 * and as V8 runs a full garbage collection for about every 64 MiB of such memory, the collections
 * and the allocations together cost more CPU than the SHA-256 of the data (bench/restore-plan).
 * Here each http connection reads through Node's `onread` option into one 256 KiB buffer that is
 * reused for its whole life, and the body is handed to a sink chunk by chunk as views of that buffer.
 * https connections read through 'data' events instead, a Buffer per TLS record: after pause(),
 * Node's TLS layer goes on decrypting the records it has already received into the `onread`
 * buffer, over the bytes a sink still holds (a restore then wrote other bytes than it hashed), while
 * a paused stream emits no 'data'. TLS allocates a Buffer per record on that path anyway.
 *
 * It is deliberately narrow: it handles the answer S3 gives to a GET of an existing object (200 or
 * 206 with a Content-Length), over HTTP/1.1 with keep-alive, http or https. Anything else (an error
 * status, a redirect, a chunked or unframed body, a connection that fails or breaks off, a
 * timeout) ends the attempt with `{ done: false }` and how many body bytes reached the sink;
 * read() then continues with the caller's full client (undici or the AWS SDK, with its retries,
 * error messages and resumption) from that offset. So this module never decides that a GET
 * failed; only a sink's own error is thrown.
 */
import { connect as netConnect, isIP, type OnReadOpts, type Socket } from 'node:net';
import { connect as tlsConnect, rootCertificates, type ConnectionOptions } from 'node:tls';
import type { ByteRange, ChunkSink } from './types.js';

/** Defaults shared with the stores' other GETs: a response head within 60 s, and no body idle for 120 s. */
export const HEADERS_TIMEOUT_MS = 60_000;
export const BODY_TIMEOUT_MS = 120_000;

export interface DirectGetOptions {
  /** Extra CA certificates (PEM) to trust besides Node's roots. */
  ca?: string[];
  insecureSkipTLSVerify?: boolean;
  /** Connect and response head within this time (default 60 s). */
  headersTimeoutMs?: number;
  /** A body idle this long ends the attempt (default 120 s). */
  bodyTimeoutMs?: number;
}

export interface DirectGetRequest {
  /** Bytes `start`–`end` (inclusive), answered with 206; without it the whole object, with 200. */
  range?: ByteRange;
  ifMatch?: string;
  /** More request headers (a SigV4 signature, Host); names in lower case. */
  headers?: Record<string, string>;
  /** The body's exact length: a response announcing another one is not read. */
  length: number;
}

export type DirectGetResult =
  | { done: true; etag: string | undefined }
  /** Not (or not completely) read here: `received` body bytes reached the sink; `reason` is for debugging only. */
  | { done: false; received: number; etag: string | undefined; reason: string };

const READ_BUFFER = 256 * 1024;
const MAX_HEAD = 64 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');

/** A kept-alive connection with its read buffer and the response it is reading. */
interface Connection {
  socket: Socket;
  key: string;
  /** Called for every read; replaced per request. */
  onRead: (chunk: Buffer) => void;
  onEnd: (reason: string) => void;
}

/** The response head: status, lower-cased headers, whether the connection may be reused. */
interface Head {
  status: number;
  headers: Map<string, string>;
  keepAlive: boolean;
}

function parseHead(text: string): Head | undefined {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0] ?? '');
  if (!m) return undefined;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    // Repeated headers that frame the body make it ambiguous: leave such a response to the full client.
    if (headers.has(name) && (name === 'content-length' || name === 'transfer-encoding')) return undefined;
    headers.set(name, value);
  }
  // HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 only when told so.
  const connection = headers.get('connection') ?? '';
  const keepAlive = m[1] === '1' ? !/\bclose\b/i.test(connection) : /\bkeep-alive\b/i.test(connection);
  return { status: Number(m[2]), headers, keepAlive };
}

export class DirectGetter {
  private readonly idle = new Map<string, Connection[]>();
  private readonly open = new Set<Socket>();
  private readonly ca: string[] | undefined;
  private closed = false;

  constructor(private readonly options: DirectGetOptions = {}) {
    this.ca = options.ca && options.ca.length > 0 ? [...rootCertificates, ...options.ca] : undefined;
  }

  /** GET `url` into `sink`; see the module comment for when it gives up. */
  async get(url: string, req: DirectGetRequest, sink: ChunkSink): Promise<DirectGetResult> {
    const u = new URL(url);
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password || this.closed) {
      return { done: false, received: 0, etag: undefined, reason: 'not an http(s) URL without credentials' };
    }
    const headers: Record<string, string> = { host: u.host, ...req.headers, 'accept-encoding': 'identity' };
    if (req.range) headers.range = `bytes=${req.range.start}-${req.range.end}`;
    if (req.ifMatch) headers['if-match'] = req.ifMatch;
    const lines = [`GET ${u.pathname}${u.search} HTTP/1.1`];
    for (const [name, value] of Object.entries(headers)) {
      if (/[\r\n]/.test(name + value)) return { done: false, received: 0, etag: undefined, reason: `header ${name} has a line break` };
      lines.push(`${name}: ${value}`);
    }
    const request = `${lines.join('\r\n')}\r\n\r\n`;
    const conn = this.take(u);
    return new Promise<DirectGetResult>((resolve, reject) => {
      const socket = conn.socket;
      let head: Buffer | undefined = Buffer.alloc(0);
      let etag: string | undefined;
      let remaining = req.length;
      let received = 0;
      let settled = false;
      const timeouts = { head: this.options.headersTimeoutMs ?? HEADERS_TIMEOUT_MS, body: this.options.bodyTimeoutMs ?? BODY_TIMEOUT_MS };
      socket.setTimeout(timeouts.head);
      const finish = (result: DirectGetResult | Error, reuse: boolean): void => {
        if (settled) return;
        settled = true;
        socket.setTimeout(0);
        if (reuse && !this.closed) this.release(conn);
        else socket.destroy();
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      // While the sink holds a chunk the socket is paused; an end or error meanwhile waits for it, so
      // that `received` counts exactly what the sink has when the caller takes over.
      let sinkBusy = false;
      let ended: string | undefined;
      const giveUp = (reason: string): void => {
        if (sinkBusy) ended ??= reason;
        else finish({ done: false, received, etag, reason }, false);
      };
      conn.onEnd = giveUp;
      let keepAlive = true;
      const body = (chunk: Buffer): void => {
        if (chunk.length > remaining) return giveUp('more bytes than Content-Length');
        remaining -= chunk.length;
        let pending: void | Promise<void>;
        try {
          pending = sink(chunk);
        } catch (err) {
          return finish(err as Error, false);
        }
        if (pending === undefined) {
          received += chunk.length;
          if (remaining === 0) finish({ done: true, etag }, keepAlive);
          return;
        }
        // The read buffer holds this chunk until the sink is done with it: no reads meanwhile, and
        // no idle timeout either (the wait is ours, not the server's).
        sinkBusy = true;
        socket.pause();
        socket.setTimeout(0);
        pending.then(
          () => {
            sinkBusy = false;
            if (settled) return;
            received += chunk.length;
            if (remaining === 0) return finish({ done: true, etag }, keepAlive && ended === undefined);
            if (ended !== undefined) return giveUp(ended);
            socket.setTimeout(timeouts.body);
            socket.resume();
          },
          (err: unknown) => finish(err as Error, false),
        );
      };
      conn.onRead = (chunk: Buffer): void => {
        if (settled) return;
        // The sink still holds the previous chunk, which a read into the same buffer has just
        // overwritten: fail rather than write bytes other than those hashed (pause() stops reads).
        if (sinkBusy) return finish(new Error(`${u.host}: the connection delivered data while paused; the download cannot go on`), false);
        if (head === undefined) {
          body(chunk);
          return;
        }
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf(HEAD_END);
        if (end < 0) {
          if (head.length > MAX_HEAD) giveUp('response head too large');
          return;
        }
        const parsed = parseHead(head.subarray(0, end).toString('latin1'));
        const rest = head.subarray(end + HEAD_END.length);
        head = undefined;
        if (!parsed) return giveUp('unparsable response head');
        const h = parsed.headers;
        etag = h.get('etag');
        if (parsed.status !== (req.range ? 206 : 200)) return giveUp(`HTTP ${parsed.status}`);
        if (h.has('transfer-encoding') || h.get('content-length') !== String(req.length)) return giveUp('body not framed by the expected Content-Length');
        keepAlive = parsed.keepAlive;
        socket.setTimeout(timeouts.body);
        if (req.length === 0) return finish({ done: true, etag }, keepAlive && rest.length === 0);
        // `rest` is in the head's own buffer (concatenated above), not in the reused read buffer.
        if (rest.length > 0) body(rest);
      };
      socket.write(request);
    });
  }

  /**
   * GET `url` into `sink`, and what the direct read does not finish through the caller's full
   * client: `rest(start, etag)` is the body from byte `start` on, pinned to the ETag the direct
   * read saw; `resumed` hears of a direct read that broke off mid-body.
   */
  async read(
    url: string | undefined,
    req: DirectGetRequest,
    sink: ChunkSink,
    fallback: { resumed(reason: string): void; rest(start: number, etag: string | undefined): Promise<AsyncIterable<unknown>> },
  ): Promise<void> {
    const tried = url === undefined ? { done: false as const, received: 0, etag: undefined, reason: 'no URL' } : await this.get(url, req, sink);
    if (tried.done) return;
    if (tried.received > 0) fallback.resumed(tried.reason);
    for await (const chunk of await fallback.rest(tried.received, tried.etag)) await sink(chunk as Buffer);
  }

  /** Close every connection. */
  close(): void {
    this.closed = true;
    for (const s of this.open) s.destroy();
    this.idle.clear();
  }

  /** An idle connection to the URL's origin, or a new one. */
  private take(u: URL): Connection {
    const key = `${u.protocol}//${u.host}`;
    const list = this.idle.get(key);
    const reused = list?.pop();
    if (reused) {
      reused.socket.ref();
      return reused;
    }
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
    const conn: Connection = { socket: undefined as unknown as Socket, key, onRead: () => undefined, onEnd: () => undefined };
    let socket: Socket;
    if (u.protocol === 'https:') {
      const tlsOptions: ConnectionOptions = {
        host,
        port,
        ...(isIP(host) ? {} : { servername: host }),
        rejectUnauthorized: !this.options.insecureSkipTLSVerify,
        ...(this.ca ? { ca: this.ca } : {}),
      };
      socket = tlsConnect(tlsOptions);
      socket.on('data', (chunk: Buffer) => conn.onRead(chunk));
    } else {
      const buffer = Buffer.allocUnsafe(READ_BUFFER);
      const onread: OnReadOpts = {
        buffer,
        callback: (n) => {
          conn.onRead(buffer.subarray(0, n));
          return true;
        },
      };
      socket = netConnect({ host, port, onread });
    }
    socket.setNoDelay(true);
    conn.socket = socket;
    this.open.add(socket);
    socket.on('error', (err: NodeJS.ErrnoException) => conn.onEnd(err.code ?? err.message));
    socket.on('timeout', () => conn.onEnd('timeout'));
    socket.on('end', () => conn.onEnd('closed by the server'));
    socket.on('close', () => {
      this.open.delete(socket);
      const idle = this.idle.get(key);
      const at = idle?.indexOf(conn) ?? -1;
      if (at >= 0) idle!.splice(at, 1);
      conn.onEnd('closed');
    });
    return conn;
  }

  private release(conn: Connection): void {
    // A sink that waited on the last chunk left the socket paused: the next request's answer
    // would not be read until the headers timeout.
    conn.socket.resume();
    conn.onRead = () => conn.socket.destroy();
    conn.onEnd = () => undefined;
    conn.socket.unref();
    const list = this.idle.get(conn.key) ?? [];
    list.push(conn);
    this.idle.set(conn.key, list);
  }
}
