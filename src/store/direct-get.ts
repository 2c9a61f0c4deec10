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

/** A GET not sent: no byte reached the sink, and the caller's full client does it all. */
function notSent(reason: string): DirectGetResult {
  return { done: false, received: 0, etag: undefined, reason };
}

/** The request's text, or the result of not sending it: a header with a line break would end the head early. */
function requestText(u: URL, req: DirectGetRequest): string | DirectGetResult {
  const headers: Record<string, string> = { host: u.host, ...req.headers, 'accept-encoding': 'identity' };
  if (req.range) headers.range = `bytes=${req.range.start}-${req.range.end}`;
  if (req.ifMatch) headers['if-match'] = req.ifMatch;
  const lines = [`GET ${u.pathname}${u.search} HTTP/1.1`];
  for (const [name, value] of Object.entries(headers)) {
    if (/[\r\n]/.test(name + value)) return notSent(`header ${name} has a line break`);
    lines.push(`${name}: ${value}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * One GET on one connection, from the request to the body's last byte. A class because the
 * connection's reads and its end, and the sink's answers, all read and change the same state, and
 * the GET settles exactly once, whichever of them comes first.
 */
class Exchange {
  private readonly socket: Socket;
  /** The response head read so far; undefined once it is complete, when every read is body. */
  private head: Buffer | undefined = Buffer.alloc(0);
  private etag: string | undefined;
  /** Body bytes still to come. */
  private remaining: number;
  /** Body bytes the sink has taken. */
  private received = 0;
  private settled = false;
  // While the sink holds a chunk the socket is paused; an end or error meanwhile waits for it, so
  // that `received` counts exactly what the sink has when the caller takes over.
  private sinkBusy = false;
  private ended: string | undefined;
  private keepAlive = true;

  constructor(
    private readonly conn: Connection,
    private readonly req: DirectGetRequest,
    private readonly sink: ChunkSink,
    /** The URL's host: it names the connection in the one error this module throws itself. */
    private readonly host: string,
    private readonly timeouts: { head: number; body: number },
    /** Hands the connection back when the GET settles: kept for the next one if `reuse`, else closed. */
    private readonly release: (reuse: boolean) => void,
    private readonly resolve: (result: DirectGetResult) => void,
    private readonly reject: (err: Error) => void,
  ) {
    this.socket = conn.socket;
    this.remaining = req.length;
  }

  /** The connection's reads and end come here from now on; then the request goes out. */
  start(request: string): void {
    this.socket.setTimeout(this.timeouts.head);
    this.conn.onEnd = this.giveUp;
    this.conn.onRead = this.read;
    this.socket.write(request);
  }

  private finish(result: DirectGetResult | Error, reuse: boolean): void {
    if (this.settled) return;
    this.settled = true;
    this.socket.setTimeout(0);
    this.release(reuse);
    if (result instanceof Error) this.reject(result);
    else this.resolve(result);
  }

  /** Ends the attempt for the caller's client to continue (a property: it is the connection's onEnd). */
  private readonly giveUp = (reason: string): void => {
    if (this.sinkBusy) this.ended ??= reason;
    else this.finish({ done: false, received: this.received, etag: this.etag, reason }, false);
  };

  /** Every read of the connection (a property: it is the connection's onRead, called as it is for every chunk). */
  private readonly read = (chunk: Buffer): void => {
    if (this.settled) return;
    // The sink still holds the previous chunk, which a read into the same buffer has just
    // overwritten: fail rather than write bytes other than those hashed (pause() stops reads).
    if (this.sinkBusy) return this.finish(new Error(`${this.host}: the connection delivered data while paused; the download cannot go on`), false);
    if (this.head === undefined) {
      this.body(chunk);
      return;
    }
    this.head = Buffer.concat([this.head, chunk]);
    this.readHead(this.head);
  };

  /** The response head read so far: once it is complete, checks it and hands the bytes after it to body(). */
  private readHead(head: Buffer): void {
    const end = head.indexOf(HEAD_END);
    if (end < 0) {
      if (head.length > MAX_HEAD) this.giveUp('response head too large');
      return;
    }
    const parsed = parseHead(head.subarray(0, end).toString('latin1'));
    const rest = head.subarray(end + HEAD_END.length);
    this.head = undefined;
    if (!parsed) return this.giveUp('unparsable response head');
    const h = parsed.headers;
    this.etag = h.get('etag');
    if (parsed.status !== (this.req.range ? 206 : 200)) return this.giveUp(`HTTP ${parsed.status}`);
    // A web page is no object: the full client names it (s3-client.ts rejectWebPage).
    if (h.get('content-type')?.toLowerCase().startsWith('text/html')) return this.giveUp('a web page');
    if (h.has('transfer-encoding') || h.get('content-length') !== String(this.req.length)) return this.giveUp('body not framed by the expected Content-Length');
    this.keepAlive = parsed.keepAlive;
    this.socket.setTimeout(this.timeouts.body);
    if (this.req.length === 0) return this.finish({ done: true, etag: this.etag }, this.keepAlive && rest.length === 0);
    // `rest` is in the head's own buffer (concatenated in read), not in the reused read buffer.
    if (rest.length > 0) this.body(rest);
  }

  /** A chunk of the body to the sink. */
  private body(chunk: Buffer): void {
    if (chunk.length > this.remaining) return this.giveUp('more bytes than Content-Length');
    this.remaining -= chunk.length;
    let pending: void | Promise<void>;
    try {
      pending = this.sink(chunk);
    } catch (err) {
      return this.finish(err as Error, false);
    }
    if (pending === undefined) {
      this.received += chunk.length;
      if (this.remaining === 0) this.finish({ done: true, etag: this.etag }, this.keepAlive);
      return;
    }
    // The read buffer holds this chunk until the sink is done with it: no reads meanwhile, and
    // no idle timeout either (the wait is ours, not the server's).
    this.sinkBusy = true;
    this.socket.pause();
    this.socket.setTimeout(0);
    // A failing sink fails the download; so does a throw in sinkDone, which must not become an
    // unhandled rejection (it would end the process).
    pending.then(() => this.sinkDone(chunk.length)).catch((err: unknown) => this.finish(err as Error, false));
  }

  /** The sink is done with a chunk of `length` bytes: on to the next read, or the end. */
  private sinkDone(length: number): void {
    this.sinkBusy = false;
    if (this.settled) return;
    this.received += length;
    if (this.remaining === 0) return this.finish({ done: true, etag: this.etag }, this.keepAlive && this.ended === undefined);
    if (this.ended !== undefined) return this.giveUp(this.ended);
    this.socket.setTimeout(this.timeouts.body);
    this.socket.resume();
  }
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
      return notSent('not an http(s) URL without credentials');
    }
    const request = requestText(u, req);
    if (typeof request !== 'string') return request;
    const conn = this.take(u);
    const timeouts = { head: this.options.headersTimeoutMs ?? HEADERS_TIMEOUT_MS, body: this.options.bodyTimeoutMs ?? BODY_TIMEOUT_MS };
    return new Promise<DirectGetResult>((resolve, reject) => {
      new Exchange(conn, req, sink, u.host, timeouts, (reuse) => this.release(conn, reuse), resolve, reject).start(request);
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
    const tried = url === undefined ? notSent('no URL') : await this.get(url, req, sink);
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

  /** After a GET: the connection is kept for the next one if `reuse` (and the getter is open), else closed. */
  private release(conn: Connection, reuse: boolean): void {
    if (!reuse || this.closed) {
      conn.socket.destroy();
      return;
    }
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
