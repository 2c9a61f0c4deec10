/**
 * An HTTP proxy on 127.0.0.1 in front of a loopback S3 server (moto) that breaks a chosen share of
 * requests, deterministically for a seed (decisions are drawn in the order requests arrive):
 *
 * - `error500`: drains the request, answers 500 InternalError (an S3 XML error body);
 * - `slowDown503`: drains the request, answers 503 SlowDown;
 * - `resetRequest`: reads (part of) the request, then destroys the connection; the server never
 *   sees the request;
 * - `resetResponse`: forwards the request, sends the response headers and half of the body, then
 *   destroys the connection. GET only: after a forwarded PUT/POST the client cannot know whether it
 *   took effect (a reset after CompleteMultipartUpload looks like a lost request, and its retry
 *   gets NoSuchUpload); on other methods this kind becomes `resetRequest`;
 * - `slow`: waits `slowMs` before forwarding (the server only sees it if the client still waits);
 * - `accessDenied403`: drains the request, answers 403 AccessDenied, as for credentials that may
 *   read but not write or delete: not retried by clients. Weight 0 unless given, so that adding it
 *   left the seeded decisions of the tests before it unchanged.
 *
 * SigV4 signs the Host header, so requests are forwarded with their headers unchanged (minus
 * hop-by-hop ones). Bounded: at most `maxConnections` client connections, one upstream agent.
 * With `tls`, it serves HTTPS (to test CA bundles and insecureSkipTLSVerify against moto).
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export type FaultKind = 'error500' | 'slowDown503' | 'resetRequest' | 'resetResponse' | 'slow' | 'accessDenied403';
export const FAULT_KINDS: readonly FaultKind[] = ['error500', 'slowDown503', 'resetRequest', 'resetResponse', 'slow', 'accessDenied403'];

export interface FaultProxyOptions {
  /** The server behind the proxy, a loopback http:// URL. */
  target: string;
  seed?: number;
  /** Share of requests that get a fault (0..1, default 0). Can be changed later with setRate(). */
  rate?: number;
  /** Relative weights of the kinds (default: 1, accessDenied403 0). */
  weights?: Partial<Record<FaultKind, number>>;
  /** Delay of `slow` (default 300 ms). */
  slowMs?: number;
  /** Only requests this accepts can get a fault (default: all). */
  filter?: (req: { method: string; url: string; operation: string }) => boolean;
  /** S3 operations (as named by s3Operation()) whose first request always gets a fault, so that a test covers them. */
  guarantee?: string[];
  maxConnections?: number;
  /** Serve HTTPS with this key and certificate (PEM), to test TLS settings against a real S3. */
  tls?: { key: string; cert: string };
}

export interface FaultCounts {
  requests: number;
  forwarded: number;
  faults: Record<FaultKind, number>;
  /** Faults per S3 operation (`UploadPart`, `ListObjectsV2` …): which operations were hit. */
  byOperation: Record<string, number>;
}

export interface FaultProxy {
  endpoint: string;
  counts: FaultCounts;
  totalFaults(): number;
  setRate(rate: number): void;
  close(): Promise<void>;
}

/** mulberry32: small, fast, good enough for deciding faults. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'expect', 'te', 'trailer'];

function s3Error(code: string, message: string, id: number): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-${id}</RequestId><HostId>fault-proxy</HostId></Error>`;
}

/** The S3 operation of a request, from its method, query and headers. */
export function s3Operation(method: string, url: string, headers: http.IncomingHttpHeaders = {}): string {
  const q = url.indexOf('?');
  const query = new URLSearchParams(q >= 0 ? url.slice(q + 1) : '');
  const path = (q >= 0 ? url.slice(0, q) : url).replace(/^\/+/, '');
  const copy = headers['x-amz-copy-source'] !== undefined;
  switch (method) {
    case 'GET':
      return query.has('list-type') ? 'ListObjectsV2' : query.has('uploads') ? 'ListMultipartUploads' : path.includes('/') ? 'GetObject' : 'ListObjects';
    case 'HEAD':
      return path.includes('/') ? 'HeadObject' : 'HeadBucket';
    case 'PUT':
      if (query.has('partNumber')) return copy ? 'UploadPartCopy' : 'UploadPart';
      return copy ? 'CopyObject' : path.includes('/') ? 'PutObject' : 'CreateBucket';
    case 'POST':
      return query.has('uploads') ? 'CreateMultipartUpload' : query.has('uploadId') ? 'CompleteMultipartUpload' : query.has('delete') ? 'DeleteObjects' : 'POST';
    case 'DELETE':
      return query.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
    default:
      return method;
  }
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  if (target.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(target.hostname)) {
    throw new Error(`fault proxy: the target must be a loopback http:// URL, got ${options.target}`);
  }
  const random = prng(options.seed ?? 1);
  let rate = options.rate ?? 0;
  const slowMs = options.slowMs ?? 300;
  const weights = FAULT_KINDS.map((k) => Math.max(0, options.weights?.[k] ?? (k === 'accessDenied403' ? 0 : 1)));
  const totalWeight = weights.reduce((a, b) => a + b, 0);
  const counts: FaultCounts = { requests: 0, forwarded: 0, faults: { error500: 0, slowDown503: 0, resetRequest: 0, resetResponse: 0, slow: 0, accessDenied403: 0 }, byOperation: {} };
  const guaranteed = new Set(options.guarantee ?? []);
  const upstream = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const sockets = new Set<Socket>();

  function pick(force = false): FaultKind | undefined {
    // Always draw two numbers, so that the sequence of decisions depends on the seed only.
    const a = random();
    const b = random() * totalWeight;
    if ((a >= rate && !force) || totalWeight === 0) return undefined;
    let acc = 0;
    for (let i = 0; i < FAULT_KINDS.length; i++) {
      acc += weights[i]!;
      if (b < acc) return FAULT_KINDS[i];
    }
    return FAULT_KINDS[FAULT_KINDS.length - 1];
  }

  function forward(req: http.IncomingMessage, res: http.ServerResponse, resetMidResponse: boolean): void {
    counts.forwarded++;
    const headers = { ...req.headers };
    for (const h of HOP_BY_HOP) delete headers[h];
    const up = http.request(
      { host: target.hostname.replace(/^\[|\]$/g, ''), port: target.port, method: req.method, path: req.url, headers, agent: upstream },
      (upRes) => {
        const outHeaders = { ...upRes.headers };
        for (const h of HOP_BY_HOP) delete outHeaders[h];
        if (!resetMidResponse) {
          res.writeHead(upRes.statusCode ?? 502, outHeaders);
          upRes.pipe(res);
          upRes.on('error', () => res.destroy());
          return;
        }
        const length = Number(upRes.headers['content-length'] ?? 0);
        const cut = Math.floor(length / 2);
        res.writeHead(upRes.statusCode ?? 502, outHeaders);
        if (cut === 0) {
          upRes.resume();
          res.socket?.destroy();
          return;
        }
        let sent = 0;
        upRes.on('data', (chunk: Buffer) => {
          if (sent >= cut) return;
          const part = chunk.subarray(0, cut - sent);
          sent += part.length;
          res.write(part);
          if (sent >= cut) {
            upRes.destroy();
            // Let the partial body reach the client, then break the connection.
            setTimeout(() => res.socket?.destroy(), 5);
          }
        });
        upRes.on('end', () => res.socket?.destroy());
      },
    );
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.pipe(up);
  }

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    counts.requests++;
    const id = counts.requests;
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const operation = s3Operation(method, url, req.headers);
    const eligible = options.filter ? options.filter({ method, url, operation }) : true;
    const force = eligible && guaranteed.delete(operation);
    let kind = eligible ? pick(force) : (random(), random(), undefined);
    if (kind === 'resetResponse' && method !== 'GET') kind = 'resetRequest';
    if (kind) {
      counts.faults[kind]++;
      counts.byOperation[operation] = (counts.byOperation[operation] ?? 0) + 1;
    }
    switch (kind) {
      case undefined:
        return forward(req, res, false);
      case 'resetResponse':
        return forward(req, res, true);
      case 'slow': {
        // The socket is kept alive for the client's next requests: the listener goes once the timer has run.
        const cancel = () => clearTimeout(timer);
        const timer = setTimeout(() => {
          req.socket.off('close', cancel);
          if (!req.socket.destroyed) forward(req, res, false);
        }, slowMs);
        req.socket.once('close', cancel);
        return;
      }
      case 'resetRequest': {
        const length = Number(req.headers['content-length'] ?? 0);
        if (length === 0) {
          req.socket.destroy();
          return;
        }
        req.once('data', () => req.socket.destroy());
        req.once('end', () => req.socket.destroy());
        return;
      }
      case 'error500':
      case 'slowDown503':
      case 'accessDenied403': {
        const [status, code, message] = {
          error500: [500, 'InternalError', 'We encountered an internal error. Please try again.'] as const,
          slowDown503: [503, 'SlowDown', 'Please reduce your request rate.'] as const,
          accessDenied403: [403, 'AccessDenied', 'Access Denied'] as const,
        }[kind];
        req.resume();
        req.once('end', () => {
          const body = s3Error(code, message, id);
          res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), 'x-amz-request-id': `fault-${id}` });
          res.end(body);
        });
        return;
      }
    }
  };
  const server = options.tls ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, handler) : http.createServer(handler);
  server.maxConnections = options.maxConnections ?? 128;
  server.keepAliveTimeout = 5000;
  server.on(options.tls ? 'secureConnection' : 'connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    counts,
    totalFaults: () => Object.values(counts.faults).reduce((a, b) => a + b, 0),
    setRate: (r: number) => {
      rate = r;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      upstream.destroy();
    },
  };
}
