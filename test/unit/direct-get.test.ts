/**
 * DirectGetter (src/store/direct-get.ts): whole-object GETs read into reused buffers, against local
 * node:http / node:https / raw TCP servers. What matters: the sink receives exactly the body (or
 * exactly a prefix of it, which `received` counts), every answer it does not handle is handed back
 * instead of failing, connections are reused, and only the sink's own errors are thrown.
 */
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { DirectGetter, type DirectGetResult } from '../../src/store/direct-get.js';
import type { ChunkSink } from '../../src/store/types.js';
import { startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';
import { makeTestTls } from '../support/tls.js';

const BODY = randomBytes(3 * 1024 * 1024 + 123);
const ETAG = `"${createHash('md5').update(BODY).digest('hex')}"`;

/** A sink that copies what it gets (chunks are views of a reused buffer). */
function collector(opts: { slow?: boolean } = {}): { sink: ChunkSink; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  let n = 0;
  return {
    sink: (chunk) => {
      parts.push(Buffer.from(chunk));
      // Every third chunk makes the download wait, as a busy disk does.
      if (opts.slow && n++ % 3 === 0) return new Promise((resolve) => setTimeout(resolve, 2));
    },
    bytes: () => Buffer.concat(parts),
  };
}

/**
 * A sink like the restore's FileWriter when its previous write is still in flight: it keeps the
 * chunk (a view) and copies it only when its promise settles, which the contract allows.
 */
function holdingCollector(): { sink: ChunkSink; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  return {
    sink: (chunk) =>
      new Promise<void>((resolve) =>
        setTimeout(() => {
          parts.push(Buffer.from(chunk));
          resolve();
        }, 1),
      ),
    bytes: () => Buffer.concat(parts),
  };
}

async function listen(server: Server | ReturnType<typeof createTcpServer>): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('DirectGetter: GETs into reused buffers', () => {
  let server: LoopbackServer;
  let base: string;
  const requests: Array<{ url: string; range?: string; ifMatch?: string; port: number }> = [];
  let handle: (req: IncomingMessage, res: ServerResponse) => boolean = () => false;
  let getter: DirectGetter;

  before(async () => {
    server = await startLoopbackServer((req, res) => {
      requests.push({ url: req.url!, port: req.socket.remotePort!, ...(req.headers.range ? { range: req.headers.range } : {}), ...(req.headers['if-match'] ? { ifMatch: req.headers['if-match'] } : {}) });
      if (handle(req, res)) return;
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (m) {
        const part = BODY.subarray(Number(m[1]), Number(m[2]) + 1);
        res.writeHead(206, { etag: ETAG, 'content-length': part.length, 'content-range': `bytes ${m[1]}-${m[2]}/${BODY.length}` }).end(part);
      } else res.writeHead(200, { etag: ETAG, 'content-length': BODY.length }).end(BODY);
    });
    base = server.url;
  });
  after(() => server.close());
  beforeEach(() => {
    requests.length = 0;
    handle = () => false;
    getter = new DirectGetter({ headersTimeoutMs: 500, bodyTimeoutMs: 500 });
  });
  afterEach(() => getter.close());

  it('reads a whole object and a range exactly, through one kept-alive connection, waiting for a slow sink', async () => {
    const a = collector();
    expect(await getter.get(`${base}/obj?X-Amz-Signature=abc`, { length: BODY.length }, a.sink)).to.deep.equal({ done: true, etag: ETAG });
    expect(a.bytes().equals(BODY)).to.equal(true);
    const b = collector({ slow: true });
    const r = await getter.get(`${base}/obj`, { length: 1_000_001, range: { start: 5, end: 1_000_005 }, ifMatch: ETAG }, b.sink);
    expect(r.done).to.equal(true);
    expect(b.bytes().equals(BODY.subarray(5, 1_000_006))).to.equal(true);
    expect(requests.map((q) => q.url)).to.deep.equal(['/obj?X-Amz-Signature=abc', '/obj']);
    expect(requests[1]).to.include({ range: 'bytes=5-1000005', ifMatch: ETAG });
    expect(requests[0]!.port).to.equal(requests[1]!.port);
  });

  it('hands back, unread, what it does not handle: error statuses, a 200 to a range, another length, a chunked body', async () => {
    const cases: Array<[(res: ServerResponse) => void, RegExp]> = [
      [(res) => res.writeHead(404, { 'content-type': 'application/xml' }).end('<Error><Code>NoSuchKey</Code></Error>'), /HTTP 404/],
      [(res) => res.writeHead(503).end('<Error><Code>SlowDown</Code></Error>'), /HTTP 503/],
      [(res) => res.writeHead(301, { location: 'http://elsewhere/' }).end(), /HTTP 301/],
      [(res) => res.writeHead(200, { 'content-length': BODY.length - 1 }).end(BODY.subarray(1)), /Content-Length/],
      [(res) => { res.writeHead(200, { 'transfer-encoding': 'chunked' }); res.end(BODY); }, /Content-Length/],
    ];
    for (const [answer, reason] of cases) {
      handle = (_req, res) => (answer(res), true);
      const c = collector();
      const r = (await getter.get(`${base}/obj`, { length: BODY.length }, c.sink)) as Extract<DirectGetResult, { done: false }>;
      expect(r.done).to.equal(false);
      expect(r.received).to.equal(0);
      expect(r.reason).to.match(reason);
      expect(c.bytes().length).to.equal(0);
    }
    handle = (_req, res) => (res.writeHead(200, { etag: ETAG, 'content-length': BODY.length }).end(BODY), true);
    const r = await getter.get(`${base}/obj`, { length: BODY.length, range: { start: 0, end: 9 } }, collector().sink);
    expect(r).to.deep.include({ done: false, received: 0 });
  });

  it('stops where a broken connection left the sink, which then has exactly a prefix of the body', async () => {
    handle = (_req, res) => {
      res.writeHead(200, { etag: ETAG, 'content-length': BODY.length });
      res.write(BODY.subarray(0, 1_500_000), () => res.destroy());
      return true;
    };
    const c = collector({ slow: true });
    const r = (await getter.get(`${base}/obj`, { length: BODY.length }, c.sink)) as Extract<DirectGetResult, { done: false }>;
    expect(r.done).to.equal(false);
    expect(r.etag).to.equal(ETAG);
    expect(r.received).to.equal(c.bytes().length);
    expect(r.received).to.be.above(0).and.at.most(1_500_000);
    expect(c.bytes().equals(BODY.subarray(0, r.received))).to.equal(true);
  });

  it('gives up on a server that does not answer in time', async () => {
    handle = () => true;
    const t0 = Date.now();
    const r = await getter.get(`${base}/obj`, { length: BODY.length }, collector().sink);
    expect(r).to.deep.include({ done: false, received: 0, reason: 'timeout' });
    expect(Date.now() - t0).to.be.below(2000);
  });

  it('hands back a refused connection, and after close() every request', async () => {
    const closed = createTcpServer();
    const port = await listen(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    expect(await getter.get(`http://127.0.0.1:${port}/obj`, { length: 1 }, collector().sink)).to.deep.include({ done: false, reason: 'ECONNREFUSED' });
    getter.close();
    expect(await getter.get(`${base}/obj`, { length: BODY.length }, collector().sink)).to.deep.include({ done: false, received: 0 });
  });

  it('throws the sink\'s own error, and opens a new connection after it', async () => {
    const boom = new Error('disk full');
    let err: unknown;
    await getter.get(`${base}/obj`, { length: BODY.length }, () => { throw boom; }).catch((e: unknown) => (err = e));
    expect(err).to.equal(boom);
    await getter.get(`${base}/obj`, { length: BODY.length }, () => Promise.reject(boom)).catch((e: unknown) => (err = e));
    expect(err).to.equal(boom);
    const c = collector();
    expect((await getter.get(`${base}/obj`, { length: BODY.length }, c.sink)).done).to.equal(true);
    expect(c.bytes().equals(BODY)).to.equal(true);
  });

  it('does not reuse a connection the server closed while it was idle', async () => {
    const raw = createTcpServer((socket: Socket) => {
      socket.once('data', () => {
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: "x"\r\n\r\nhello`);
        // Closed right after the answer, as a server whose keep-alive timeout passed.
        setTimeout(() => socket.end(), 20);
      });
    });
    const port = await listen(raw);
    try {
      for (let i = 0; i < 3; i++) {
        const c = collector();
        expect(await getter.get(`http://127.0.0.1:${port}/o`, { length: 5 }, c.sink)).to.deep.equal({ done: true, etag: '"x"' });
        expect(c.bytes().toString()).to.equal('hello');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      raw.close();
    }
  });

  it('keeps an HTTP/1.0 connection only when the server says keep-alive', async () => {
    let connections = 0;
    const raw = createTcpServer((socket: Socket) => {
      connections++;
      // One answer per connection, and the connection left open: a client that reuses it waits in vain.
      socket.once('data', () => socket.write(`HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello`));
    });
    const port = await listen(raw);
    try {
      for (let i = 0; i < 2; i++) expect((await getter.get(`http://127.0.0.1:${port}/o`, { length: 5 }, collector().sink)).done).to.equal(true);
      expect(connections).to.equal(2);
    } finally {
      getter.close();
      raw.close();
    }
  });

  it('a sink that holds its chunks until its promise settles gets exactly the body, over http and https, and the connection is then reused at once', async () => {
    const tls = makeTestTls();
    const secure = createHttpsServer({ key: tls.keyPem, cert: tls.certPem }, (_req, res) => res.writeHead(200, { 'content-length': BODY.length }).end(BODY));
    const port = await listen(secure);
    const trusting = new DirectGetter({ ca: [tls.caPem], headersTimeoutMs: 5_000 });
    try {
      for (const [g, url] of [
        [getter, `${base}/obj`],
        [trusting, `https://127.0.0.1:${port}/obj`],
      ] as const) {
        // Twice: the second GET goes over the connection the first left after an asynchronous last chunk.
        for (let round = 0; round < 2; round++) {
          const started = Date.now();
          const c = holdingCollector();
          expect(await g.get(url, { length: BODY.length }, c.sink), `${url} round ${round}`).to.deep.include({ done: true });
          expect(c.bytes().equals(BODY), `${url} round ${round}: the bytes the sink kept`).to.equal(true);
          expect(Date.now() - started, `${url} round ${round}: no wait for a timeout`).to.be.below(3_000);
        }
      }
    } finally {
      trusting.close();
      secure.close();
    }
  });

  it('talks TLS with a CA bundle, and hands back a certificate it cannot verify', async () => {
    const tls = makeTestTls();
    const secure = createHttpsServer({ key: tls.keyPem, cert: tls.certPem }, (_req, res) => res.writeHead(200, { 'content-length': BODY.length }).end(BODY));
    const port = await listen(secure);
    try {
      const trusting = new DirectGetter({ ca: [tls.caPem] });
      const c = collector();
      expect((await trusting.get(`https://127.0.0.1:${port}/obj`, { length: BODY.length }, c.sink)).done).to.equal(true);
      expect(c.bytes().equals(BODY)).to.equal(true);
      trusting.close();
      const r = await getter.get(`https://127.0.0.1:${port}/obj`, { length: BODY.length }, collector().sink);
      expect(r).to.deep.include({ done: false, received: 0 });
      expect((r as { reason: string }).reason).to.match(/CERT|SELF_SIGNED|UNABLE/);
      const insecure = new DirectGetter({ insecureSkipTLSVerify: true });
      expect((await insecure.get(`https://127.0.0.1:${port}/obj`, { length: BODY.length }, collector().sink)).done).to.equal(true);
      insecure.close();
    } finally {
      secure.close();
    }
  });
});
