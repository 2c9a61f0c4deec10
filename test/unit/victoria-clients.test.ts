/**
 * The clients' HTTP behaviour against recorded answers (undici MockAgent, passed as the
 * dispatcher: nothing global changes): what is sent where, and what errors say.
 */
import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockAgent } from 'undici';
import { SnapshotUndeletableError, VictoriaDeleteError, VictoriaError, VictoriaHttpError, VictoriaUnreachableError } from '../../src/victoria/errors.js';
import { vlSnapshotFromPath } from '../../src/victoria/vl-partitions.js';
import { LogsSource } from '../../src/victoria/logs-source.js';
import { MetricsSource } from '../../src/victoria/metrics-source.js';
import { vmSnapshot } from '../../src/victoria/vm-snapshots.js';
import { startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

const VM = 'http://vm.test:8428';
const VL = 'http://vl.test:9428';

interface Seen {
  path: string;
  body: string;
  headers: Record<string, string>;
}

function mock(origin: string): { agent: MockAgent; seen: Seen[]; on: (path: string, status: number, body: string, headers?: Record<string, string>) => void } {
  const agent = new MockAgent();
  agent.disableNetConnect();
  const pool = agent.get(origin);
  const seen: Seen[] = [];
  // Interceptors answer in the order they were defined, once each; the reply callback runs once
  // per request, so it is where requests are recorded.
  const on = (path: string, status: number, body: string, headers: Record<string, string> = {}): void => {
    pool.intercept({ path, method: 'POST' }).reply((req) => {
      const h: Record<string, string> = {};
      const raw = req.headers as Record<string, string> | string[] | undefined;
      if (Array.isArray(raw)) for (let i = 0; i + 1 < raw.length; i += 2) h[String(raw[i]).toLowerCase()] = String(raw[i + 1]);
      else if (raw) for (const [k, v] of Object.entries(raw)) h[k.toLowerCase()] = String(v);
      seen.push({ path, body: typeof req.body === 'string' ? req.body : String(req.body ?? ''), headers: h });
      return { statusCode: status, data: body, responseOptions: { headers } };
    });
  };
  return { agent, seen, on };
}

describe('victoria clients (recorded answers)', () => {
  it('an HTML page instead of an answer (another service at that address) is said in one line', async () => {
    const { agent, on } = mock(VM);
    const page = `<!DOCTYPE HTML>\n<html lang="en">\n<head><title>Error response</title></head>\n<body><h1>Error response</h1><p>Error code: 501</p>${'<p>filler</p>'.repeat(40)}</body></html>\n`;
    on('/snapshot/create', 501, page, { 'content-type': 'text/html' });
    const err = (await new MetricsSource({ url: VM }, agent).create().catch((e: unknown) => e)) as Error;
    expect(err.message).to.equal(
      `VictoriaMetrics POST ${VM}/snapshot/create (create snapshot): HTTP 501: an HTML page titled "Error response", not a VictoriaMetrics or VictoriaLogs answer: is ${VM} the database's own address, not another service or a proxy's page?`,
    );
  });

  it('sends the auth key in the form body, never in the URL', async () => {
    const { agent, seen, on } = mock(VM);
    on('/snapshot/create', 200, '{"status":"ok","snapshot":"20261121174807-18EA20A236F87D73"}');
    const src = new MetricsSource({ url: VM, authKey: 'topsecret' }, agent);
    const [snap] = await src.create();
    expect(snap?.name).to.equal('20261121174807-18EA20A236F87D73');
    expect(seen[0]?.path).to.equal('/snapshot/create');
    expect(new URLSearchParams(seen[0]?.body).get('authKey')).to.equal('topsecret');
  });

  it('a wrong key: the error names URL, status, the server message and the flag, not the key', async () => {
    const { agent, on } = mock(VM);
    on('/snapshot/create', 401, 'The provided authKey doesn\'t match -snapshotAuthKey\n', { 'content-type': 'text/plain; charset=utf-8' });
    const src = new MetricsSource({ url: VM, authKey: 'topsecret' }, agent);
    const err = await src.create().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(VictoriaHttpError);
    const e = err as VictoriaHttpError;
    expect(e.status).to.equal(401);
    expect(e.authFlag).to.equal('snapshotAuthKey');
    expect(e.url).to.equal(`${VM}/snapshot/create`);
    expect(e.message).to.equal(
      `VictoriaMetrics POST ${VM}/snapshot/create (create snapshot): HTTP 401: The provided authKey doesn't match -snapshotAuthKey (-snapshotAuthKey does not match: pass the server's -snapshotAuthKey value with --auth-key)`,
    );
    expect(e.message).not.to.contain('topsecret');
    // A key with a trailing newline (a Secret made with echo) is pointed out.
    const padded = mock(VM);
    padded.on('/snapshot/create', 401, 'The provided authKey doesn\'t match -snapshotAuthKey\n');
    const err2 = (await new MetricsSource({ url: VM, authKey: 'topsecret\n' }, padded.agent).create().catch((x: unknown) => x)) as Error;
    expect(err2.message).to.match(/-snapshotAuthKey does not match: .*; the key given starts or ends with whitespace, such as a newline from `echo` into the Secret\)$/);
  });

  it('1.79.5: the 400 auth answer echoes the request URI and the key; both are redacted', async () => {
    const { agent, on } = mock(VM);
    on('/snapshot/list', 400, 'remoteAddr: "127.0.0.1:1"; requestURI: /snapshot/list?authKey=topsecret; invalid authKey "topsecret". It must match the value from -snapshotAuthKey command line flag');
    const src = new MetricsSource({ url: VM, authKey: 'topsecret', authKeyOption: '--vm-auth-key' }, agent);
    const err = (await src.list().catch((e: unknown) => e)) as VictoriaHttpError;
    expect(err.authFlag).to.equal('snapshotAuthKey');
    expect(err.message).not.to.contain('topsecret');
    expect(err.message).to.contain('--vm-auth-key');
  });

  it('delete: 1.145 "cannot find snapshot" (500) is fine; invalid names fail before any request', async () => {
    const { agent, seen, on } = mock(VM);
    on('/snapshot/delete', 500, '{"status":"error","msg":"cannot find snapshot \\"20200101000000-0000000000000000\\""}');
    const src = new MetricsSource({ url: VM }, agent);
    await src.delete([vmSnapshot('20200101000000-0000000000000000')]);
    expect(new URLSearchParams(seen[0]?.body).get('snapshot')).to.equal('20200101000000-0000000000000000');
    const err = await src.snapshots.delete('bad').catch((e: unknown) => e);
    expect(err).to.be.instanceOf(VictoriaError);
    expect((err as Error).message).to.match(/"bad" is invalid/);
    expect(seen).to.have.length(1);
  });

  it('delete: tries every snapshot and reports all failures together', async () => {
    const { agent, on } = mock(VM);
    on('/snapshot/delete', 500, '{"status":"error","msg":"cannot remove: read-only file system"}');
    on('/snapshot/delete', 200, '{"status":"ok"}');
    on('/snapshot/delete', 500, '{"status":"error","msg":"cannot remove: busy"}');
    const src = new MetricsSource({ url: VM }, agent);
    const names = ['20261121174807-18EA20A236F87D71', '20261121174807-18EA20A236F87D72', '20261121174807-18EA20A236F87D73'];
    const err = (await src.delete(names.map(vmSnapshot)).catch((e: unknown) => e)) as VictoriaDeleteError;
    expect(err).to.be.instanceOf(VictoriaDeleteError);
    expect(err.errors).to.have.length(2);
    expect(err.message).to.match(/2 of 3 snapshot deletions failed/);
    expect(err.message).to.contain('read-only file system');
    expect(err.message).to.contain('busy');
  });

  it('credentials in the URL become basic auth and never appear in messages', async () => {
    const { agent, seen, on } = mock(VM);
    on('/snapshot/list', 401, '', { 'www-authenticate': 'Basic realm="VictoriaMetrics"' });
    const src = new MetricsSource({ url: 'http://admin:pa55word@vm.test:8428/' }, agent);
    expect(src.url).to.equal(VM);
    const err = (await src.list().catch((e: unknown) => e)) as VictoriaHttpError;
    expect(seen[0]?.headers.authorization).to.equal(`Basic ${Buffer.from('admin:pa55word').toString('base64')}`);
    expect(err.authFlag).to.equal('httpAuth');
    expect(err.message).to.contain('(empty body)');
    expect(err.message).not.to.contain('pa55word');
  });

  it('keeps a path prefix of the base URL (servers behind a proxy)', async () => {
    const { agent, seen, on } = mock(VM);
    on('/vm/snapshot/list', 200, '{"status":"ok","snapshots":[]}');
    const src = new MetricsSource({ url: `${VM}/vm/` }, agent);
    expect(await src.list()).to.deep.equal([]);
    expect(seen[0]?.path).to.equal('/vm/snapshot/list');
  });

  it('VictoriaLogs v1.31-v1.43: falls back to one create per partition, accepts string answers', async () => {
    const { agent, seen, on } = mock(VL);
    on('/internal/force_flush', 200, '');
    on('/internal/partition/snapshot/create', 400, 'cannot create snapshot from partition "", because it is missing\n');
    on('/internal/partition/list', 200, '["20261120","20261121"]');
    on('/internal/partition/snapshot/create', 200, '"/vlogs/partitions/20261120/snapshots/20261121180021-18EA214E431A0F3E"');
    on('/internal/partition/snapshot/create', 200, '["/vlogs/partitions/20261121/snapshots/20261121180021-18EA214E431A0F3F"]');
    const src = new LogsSource({ url: VL, authKey: 'pk' }, agent);
    const snaps = await src.create();
    expect(snaps.map((s) => s.partition)).to.deep.equal(['20261120', '20261121']);
    expect(snaps.map((s) => s.relPathPrefix)).to.deep.equal(['partitions/20261120/', 'partitions/20261121/']);
    const perDay = seen.filter((s) => s.path === '/internal/partition/snapshot/create').slice(1).map((s) => new URLSearchParams(s.body));
    expect(perDay.map((p) => [p.get('partition_prefix'), p.get('name'), p.get('authKey')])).to.deep.equal([
      ['20261120', '20261120', 'pk'],
      ['20261121', '20261121', 'pk'],
    ]);
  });

  it('VictoriaLogs: when a later per-partition create fails, the snapshots already made are deleted', async () => {
    const { agent, seen, on } = mock(VL);
    on('/internal/force_flush', 200, '');
    on('/internal/partition/snapshot/create', 400, 'cannot create snapshot from partition "", because it is missing');
    on('/internal/partition/list', 200, '["20261120","20261121"]');
    on('/internal/partition/snapshot/create', 200, '["/vlogs/partitions/20261120/snapshots/20261121180021-18EA214E431A0F3E"]');
    on('/internal/partition/snapshot/create', 400, 'cannot create snapshot from partition "20261121", because it is missing');
    on('/internal/partition/snapshot/delete', 204, '');
    const src = new LogsSource({ url: VL }, agent);
    const err = (await src.create().catch((e: unknown) => e)) as VictoriaHttpError;
    expect(err).to.be.instanceOf(VictoriaHttpError);
    expect(err.message).to.contain('create snapshot of partition 20261121');
    const del = seen.find((s) => s.path === '/internal/partition/snapshot/delete');
    expect(new URLSearchParams(del?.body).get('path')).to.equal('/vlogs/partitions/20261120/snapshots/20261121180021-18EA214E431A0F3E');
  });

  it('VictoriaLogs: a server without the snapshot API says which version is needed', async () => {
    const { agent, on } = mock(VL);
    on('/internal/force_flush', 200, '');
    on('/internal/partition/snapshot/create', 400, 'unsupported path requested: "/internal/partition/snapshot/create"');
    const err = (await new LogsSource({ url: VL }, agent).create().catch((e: unknown) => e)) as Error;
    expect(err.message).to.contain('older than VictoriaLogs v1.31 (upgrade it), or it runs in cluster mode with -storageNode set');
  });

  it('VictoriaLogs: the second delete of a path ("doesn\'t exist") is not an error', async () => {
    const { agent, on } = mock(VL);
    on('/internal/partition/snapshot/delete', 400, 'snapshot "20261121183451-18EA232FF76771F8" doesn\'t exist at "/vlogs/partitions/20261119"\n');
    const src = new LogsSource({ url: VL }, agent);
    expect(await src.partitions.deleteSnapshot('/vlogs/partitions/20261119/snapshots/20261121183451-18EA232FF76771F8')).to.equal('missing');
  });

  it('VictoriaLogs v1.31–v1.43: one refused delete is enough; the error names every snapshot', async () => {
    const paths = ['/vlogs/partitions/20261119/snapshots/20261121183451-18EA232FF76771F8', '/vlogs/partitions/20261120/snapshots/20261121183451-18EA232FF76771F9'];
    const { agent, on, seen } = mock(VL);
    on('/internal/partition/snapshot/delete', 400, 'unsupported path requested: "/internal/partition/snapshot/delete"\n');
    const err = (await new LogsSource({ url: VL }, agent).delete(paths.map(vlSnapshotFromPath)).catch((e: unknown) => e)) as SnapshotUndeletableError;
    expect(err).to.be.instanceOf(SnapshotUndeletableError);
    expect(err.paths).to.deep.equal(paths);
    expect(err.message).to.include('v1.44 or newer can): 2 snapshot(s) stay on disk');
    expect(seen).to.have.length(1);
  });

  it('VictoriaLogs: a delete in a partition that is not attached reports the snapshot when it cannot tell it is gone', async () => {
    const path = '/vlogs/partitions/20261119/snapshots/20261121183451-18EA232FF76771F8';
    const { agent, on } = mock(VL);
    const detached = 'partition path "/vlogs/partitions/20261119" cannot be found across active partitions\n';
    for (let i = 0; i < 3; i++) on('/internal/partition/snapshot/delete', 400, detached);
    const src = new LogsSource({ url: VL }, agent);
    expect(await src.partitions.deleteSnapshot(path)).to.equal('detached');
    // Without the data directory, "detached" and "dropped by retention" look the same: it says both.
    const err = (await src.delete([vlSnapshotFromPath(path)]).catch((e: unknown) => e)) as SnapshotUndeletableError;
    expect(err).to.be.instanceOf(SnapshotUndeletableError);
    expect(err.paths).to.deep.equal([path]);
    expect(err.message).to.include('their partition is not attached').and.include('unless retention dropped the partition');
    // With it: the snapshot's directory is not there, so it went with its partition.
    const gone = new LogsSource({ url: VL, dataDir: mkdtempSync(join(tmpdir(), 'vl-data-')) }, agent);
    await gone.delete([vlSnapshotFromPath(path)]);
  });

  it('VictoriaLogs: -forceFlushAuthKey errors name the force-flush option', async () => {
    const { agent, on } = mock(VL);
    on('/internal/force_flush', 401, 'Expected to receive non-empty authKey when -forceFlushAuthKey is set\n');
    const err = (await new LogsSource({ url: VL, authKey: 'pk' }, agent).create().catch((e: unknown) => e)) as VictoriaHttpError;
    expect(err.authFlag).to.equal('forceFlushAuthKey');
    expect(err.message).to.contain('the server requires -forceFlushAuthKey: pass its value with --force-flush-auth-key');
  });

  describe('unreachable servers', () => {
    let silent: LoopbackServer;
    let port: number;
    before(async () => {
      // Accepts connections and never answers.
      silent = await startLoopbackServer(() => undefined);
      port = silent.port;
    });
    after(() => silent.close());

    it('a count whose backup no longer needs it ends with its signal, closing the connection (the server cancels the query)', async () => {
      let closed = false;
      const slow = await startLoopbackServer((req, res) => {
        if (req.url?.startsWith('/internal/force_flush')) return void res.end();
        req.socket.on('close', () => (closed = true)); // the query never answers
      });
      try {
        const src = new MetricsSource({ url: slow.url });
        const stop = new AbortController();
        setTimeout(() => stop.abort(new Error('the backup failed')), 100);
        const started = performance.now();
        const err = (await src.counts({ signal: stop.signal }).catch((e: unknown) => e)) as Error;
        expect(err.message).to.equal('the backup failed');
        expect(performance.now() - started, 'not the 5 min of the count timeout').to.be.below(5000);
        await new Promise((r) => setTimeout(r, 50));
        expect(closed, 'the connection is closed').to.equal(true);
      } finally {
        await slow.close();
      }
    });

    it('the signal also ends the flush before a count and the /metrics read of countStart, which would wait 30 s each', async () => {
      for (const src of [new MetricsSource({ url: `http://127.0.0.1:${port}` }), new LogsSource({ url: `http://127.0.0.1:${port}` })]) {
        for (const step of [(signal: AbortSignal) => src.counts({ signal }), (signal: AbortSignal) => src.countStart(signal)]) {
          const stop = new AbortController();
          setTimeout(() => stop.abort(new Error('the backup was stopped')), 100);
          const started = performance.now();
          const err = (await step(stop.signal).then(
            () => new Error('resolved'),
            (e: unknown) => e,
          )) as Error;
          expect(err.message, `${src.kind}`).to.equal('the backup was stopped');
          expect(performance.now() - started, 'not the 30 s of the default timeout').to.be.below(5000);
        }
      }
    });

    it('a timeout says how long it waited', async () => {
      const src = new MetricsSource({ url: `http://127.0.0.1:${port}`, timeoutMs: 200 });
      const err = (await src.list().catch((e: unknown) => e)) as Error;
      expect(err).to.be.instanceOf(VictoriaUnreachableError);
      expect(err.message).to.equal(`VictoriaMetrics POST http://127.0.0.1:${port}/snapshot/list: no answer within 200 ms: is the server overloaded, or the URL another service's?`);
    });

    it('https:// to a plain-HTTP server says to use http://', async () => {
      const plain = await startLoopbackServer((_req, res) => res.end('{}'));
      const p = plain.port;
      try {
        const err = (await new MetricsSource({ url: `https://127.0.0.1:${p}` }).list().catch((e: unknown) => e)) as Error;
        expect(err).to.be.instanceOf(VictoriaUnreachableError);
        expect(err.message).to.equal(`VictoriaMetrics POST https://127.0.0.1:${p}/snapshot/list: the server does not speak TLS here: use http://, not https://`);
      } finally {
        await plain.close();
      }
    });

    it('a refused connection says so', async () => {
      const closed = await startLoopbackServer();
      const p = closed.port;
      await closed.close();
      const err = (await new LogsSource({ url: `http://127.0.0.1:${p}` }).list().catch((e: unknown) => e)) as Error;
      expect(err).to.be.instanceOf(VictoriaUnreachableError);
      expect(err.message).to.match(/connection refused .*is the server running/);
    });
  });
});
