/**
 * The one place the Victoria clients send HTTP requests (undici `request`, the default dispatcher,
 * nothing global changed). API calls are POSTs with a form body: VictoriaMetrics and VictoriaLogs
 * read parameters with `r.FormValue`, which takes the body of a form POST on every version, newer
 * VictoriaLogs accepts only POST on `/internal/*`, and an `authKey` in the body
 * stays out of URLs, proxy logs and the request URI that VictoriaMetrics 1.79 echoes in errors.
 */
import type { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import {
  clip,
  detectAuthProblem,
  redactSecrets,
  VictoriaHttpError,
  VictoriaUnreachableError,
  type AuthOptionNames,
  type Product,
} from './errors.js';
import type { SourceOptions } from './types.js';

export type Params = Record<string, string | readonly string[] | undefined>;

/** Which key a request carries: the snapshot/partition key, the force-flush key, or none. */
export type KeyKind = 'authKey' | 'forceFlushAuthKey' | 'none';

export interface CallOptions {
  key?: KeyKind;
  /** GET (parameters in the query string) only for read-only pages such as /metrics. Default POST. */
  method?: 'GET' | 'POST';
  /** Overrides the client's timeout for this call. */
  timeoutMs?: number;
  /** Ends the call (and its connection, which the server takes as a cancelled query). */
  signal?: AbortSignal;
}

export interface TextResponse {
  status: number;
  body: string;
  contentType: string | undefined;
  wwwAuthenticate: string | undefined;
}

export interface StreamResponse {
  status: number;
  body: Readable;
}

/** The answer of a Victoria server to a path it does not serve (400 on VictoriaMetrics and VictoriaLogs, 404 behind some proxies). */
export function isUnsupportedPath(res: Pick<TextResponse, 'status' | 'body'>): boolean {
  return (res.status === 400 || res.status === 404) && /unsupported path requested/i.test(res.body);
}

const DEFAULT_TIMEOUT_MS = 30_000;
/**
 * For snapshot creation and counting queries: VictoriaMetrics deletes a snapshot it made for a client
 * that disconnected, so this must outlast creation.
 */
export const LONG_TIMEOUT_MS = 5 * 60_000;

export class HttpClient {
  /** Base URL for messages: no credentials, no trailing slash. */
  readonly baseUrl: string;
  readonly timeoutMs: number;
  private readonly base: URL;
  /** Path prefix of the base URL ('' or '/prefix'), kept apart: URL turns an empty path into '/'. */
  private readonly prefix: string;
  private readonly authorization: string | undefined;
  /** The basic-auth password, from the URL: removed from every message. */
  private readonly basicPassword: string | undefined;
  private readonly names: AuthOptionNames;

  constructor(
    readonly product: Product,
    private readonly options: SourceOptions,
    private readonly dispatcher?: Dispatcher,
  ) {
    let base: URL;
    try {
      base = new URL(options.url);
    } catch {
      // Named without what looks like credentials: an unparsable URL may still carry a password.
      throw new TypeError(`${product} URL ${JSON.stringify(options.url.replace(/\/\/[^/]*@/, '//***@'))} is not a URL: give its HTTP address, such as http://127.0.0.1:${product === 'VictoriaLogs' ? 9428 : 8428}`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      // Not the URL itself: it may carry a password.
      throw new TypeError(`${product} URL must be http:// or https://, got ${JSON.stringify(base.protocol)} (host ${JSON.stringify(base.host)})`);
    }
    // Credentials in the URL become basic auth, and never appear in messages.
    let basic: { username: string; password: string } | undefined;
    if (base.username !== '' || base.password !== '') {
      basic = { username: decodeURIComponent(base.username), password: decodeURIComponent(base.password) };
      base.username = '';
      base.password = '';
    }
    base.search = '';
    base.hash = '';
    this.prefix = base.pathname.replace(/\/+$/, '');
    base.pathname = '/';
    this.base = base;
    this.baseUrl = `${base.origin}${this.prefix}`;
    this.authorization = basic ? `Basic ${Buffer.from(`${basic.username}:${basic.password}`).toString('base64')}` : undefined;
    this.basicPassword = basic?.password;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.names = {
      authKeyOption: options.authKeyOption ?? '--auth-key',
      forceFlushAuthKeyOption: options.forceFlushAuthKeyOption ?? '--force-flush-auth-key',
    };
  }

  /**
   * `/internal/force_flush` (both products; 200 with an empty body): makes just-ingested data
   * searchable and, on VictoriaLogs, puts the row buffer into parts, which a partition snapshot
   * would otherwise miss (its last ~1 s of rows).
   */
  async forceFlush(signal?: AbortSignal): Promise<void> {
    const path = '/internal/force_flush';
    const res = await this.post(path, {}, { key: 'forceFlushAuthKey', ...(signal ? { signal } : {}) });
    if (res.status < 200 || res.status >= 300) throw this.httpError(path, res, 'forceFlushAuthKey', 'force flush');
  }

  /** Full URL of a server path, for requests and messages. */
  url(path: string): string {
    return `${this.baseUrl}${path}`;
  }

  /** POSTs and reads the whole answer as text; the caller decides what a status means. */
  async post(path: string, params: Params = {}, opts: CallOptions = {}): Promise<TextResponse> {
    const res = await this.send(path, params, opts);
    let body: string;
    try {
      body = await res.body.text();
    } catch (err) {
      throw this.unreachable(path, opts, err);
    }
    return {
      status: res.statusCode,
      body,
      contentType: header(res.headers, 'content-type'),
      wwwAuthenticate: header(res.headers, 'www-authenticate'),
    };
  }

  /** POSTs and returns the body as a stream when the status is 2xx; otherwise throws the HTTP error. */
  async postStream(path: string, params: Params = {}, opts: CallOptions = {}): Promise<StreamResponse> {
    const res = await this.send(path, params, opts);
    if (res.statusCode >= 200 && res.statusCode < 300) return { status: res.statusCode, body: res.body };
    const body = await res.body.text().catch(() => '');
    const text = { status: res.statusCode, body, contentType: header(res.headers, 'content-type'), wwwAuthenticate: header(res.headers, 'www-authenticate') };
    throw this.httpError(path, text, opts.key ?? 'none', undefined, opts.method);
  }

  /** The error for an unexpected answer: URL, status, the server's words, and what to fix. */
  httpError(path: string, res: TextResponse, key: KeyKind, what?: string, method: 'GET' | 'POST' = 'POST'): VictoriaHttpError {
    const url = this.url(path);
    const serverMessage = clip(redactSecrets(serverText(res.body), this.secrets()));
    const auth = detectAuthProblem(
      res.status,
      serverMessage,
      res.wwwAuthenticate,
      { authKey: this.keyFor(key) !== undefined, basicAuth: this.authorization !== undefined, forceFlush: key === 'forceFlushAuthKey' },
      this.names,
    );
    const said = serverMessage === '' ? '(empty body)' : (htmlPage(serverMessage, this.base.origin) ?? serverMessage);
    const prefix = `${this.product} ${method} ${url}${what ? ` (${what})` : ''}: HTTP ${res.status}: ${said}`;
    // A Secret made with `echo` carries a newline the server does not: the commonest "wrong" key.
    const sent = this.keyFor(key);
    const padded = auth && sent !== undefined && sent !== sent.trim() ? '; the key given starts or ends with whitespace, such as a newline from `echo` into the Secret' : '';
    const hint = auth ? ` (${auth.hint}${padded})` : isUnsupportedPath(res) ? this.pathPrefixHint() : '';
    return new VictoriaHttpError(`${prefix}${hint}`, url, method, res.status, serverMessage, auth?.flag);
  }

  /**
   * For an "unsupported path" answer: a URL with a path (`http://vm:8428/vm`) reaches only a server
   * started with that -http.pathPrefix; without one it answers every request this way.
   */
  pathPrefixHint(): string {
    return this.prefix === '' ? '' : ` (the URL's path ${this.prefix} is part of every request: unless the server runs with -http.pathPrefix=${this.prefix}, give the URL without it)`;
  }

  /** Removes our own keys from text that came from the server. */
  redact(text: string): string {
    return redactSecrets(text, this.secrets());
  }

  private async send(path: string, params: Params, opts: CallOptions): Promise<Dispatcher.ResponseData> {
    const form = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined) continue;
      for (const item of typeof v === 'string' ? [v] : v) form.append(k, item);
    }
    const key = this.keyFor(opts.key ?? 'none');
    if (key !== undefined) form.set('authKey', key);
    const method = opts.method ?? 'POST';
    const headers: Record<string, string> = {};
    if (method === 'POST') headers['content-type'] = 'application/x-www-form-urlencoded';
    if (this.authorization) headers.authorization = this.authorization;
    const timeout = opts.timeoutMs ?? this.timeoutMs;
    const target = new URL(`${this.prefix}${path}`, this.base);
    if (method === 'GET') target.search = form.toString();
    try {
      return await request(target, {
        method,
        headers,
        ...(method === 'POST' ? { body: form.toString() } : {}),
        headersTimeout: timeout,
        bodyTimeout: timeout,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
      });
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw this.unreachable(path, opts, err);
    }
  }

  private unreachable(path: string, opts: CallOptions, err: unknown): VictoriaUnreachableError {
    const url = this.url(path);
    const code = (err as { code?: unknown }).code;
    const detail = this.redact(err instanceof Error ? err.message : String(err));
    const timeout = opts.timeoutMs ?? this.timeoutMs;
    const why =
      code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT'
        ? `no answer within ${timeout} ms: is the server overloaded, or the URL another service's?`
        : code === 'ECONNREFUSED'
          ? `connection refused (${detail}): is the server running and the URL right?`
          : code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number/i.test(detail)
            ? 'the server does not speak TLS here: use http://, not https://'
            : detail.trim();
    return new VictoriaUnreachableError(`${this.product} ${opts.method ?? 'POST'} ${url}: ${why}`, url, { cause: err });
  }

  private keyFor(kind: KeyKind): string | undefined {
    const v = kind === 'authKey' ? this.options.authKey : kind === 'forceFlushAuthKey' ? this.options.forceFlushAuthKey : undefined;
    return v === '' ? undefined : v;
  }

  private secrets(): string[] {
    return [this.options.authKey, this.options.forceFlushAuthKey, this.basicPassword].filter(
      (s): s is string => typeof s === 'string' && s !== '',
    );
  }
}

function header(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * A web page where a Victoria server answers in text or JSON: another service (or a proxy's login
 * or error page) answers at that address. Said in one line instead of the page's markup.
 */
function htmlPage(text: string, origin: string): string | undefined {
  if (!/^<(!doctype html|html)[\s>]/i.test(text)) return undefined;
  const title = /<title>([^<]{1,200})<\/title>/i.exec(text)?.[1]?.trim();
  return `an HTML page${title ? ` titled ${JSON.stringify(title)}` : ''}, not a VictoriaMetrics or VictoriaLogs answer: is ${origin} the database's own address, not another service or a proxy's page?`;
}

/** The server's words: the JSON `msg` (VictoriaMetrics) or `error` (Prometheus API), else the text. */
export function serverText(body: string): string {
  const t = body.trim();
  if (t.startsWith('{')) {
    try {
      const j = JSON.parse(t) as { msg?: unknown; error?: unknown };
      if (typeof j.msg === 'string') return j.msg;
      if (typeof j.error === 'string') return j.error;
    } catch {
      // not JSON after all: use the text
    }
  }
  return t;
}
