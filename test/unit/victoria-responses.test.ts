/**
 * Parsing of every VictoriaMetrics / VictoriaLogs answer variant the clients meet. Bodies are
 * answers recorded from the servers.
 */
import { expect } from 'chai';
import { detectAuthProblem, redactSecrets } from '../../src/victoria/errors.js';
import { HttpClient, isUnsupportedPath, serverText } from '../../src/victoria/http.js';
import { isPartitionName, isSnapshotName, snapshotTime } from '../../src/victoria/snapshot-names.js';
import { countForBackup, LATE_DATA_MARGIN_MS } from '../../src/victoria/flat-counts.js';
import { countStart, flagValue, parseRetention } from '../../src/victoria/retention.js';
import type { CountOptions, Snapshot, SnapshotSource } from '../../src/victoria/types.js';
import { parseAppVersion } from '../../src/victoria/version.js';
import { countLogs, dayCountQuery, parseDayCounts } from '../../src/victoria/vl-counts.js';
import {
  classifyVlDelete,
  isLegacyCreateRefusal,
  parseVlStringList,
  vlSnapshotFromPath,
} from '../../src/victoria/vl-partitions.js';
import { countMetrics, countWindow, exportLineSamples, parseCountValues, parseInstantCount } from '../../src/victoria/vm-counts.js';
import { classifyVmDelete, parseVmCreate, parseVmList, vmSnapshot } from '../../src/victoria/vm-snapshots.js';
import { startLoopbackServer } from '../support/loopback-server.js';

const NAMES = { AUTH: { authKeyOption: '--auth-key', forceFlushAuthKeyOption: '--force-flush-auth-key' } };

describe('victoria: snapshot names', () => {
  it('accepts the names VictoriaMetrics 1.79.5 and 1.145 produced', () => {
    for (const n of ['20261121174744-18EA209CF4366735', '20261121174807-18EA20A236F87D73', '20261121183451-18EA232FF76771F8']) {
      expect(isSnapshotName(n), n).to.equal(true);
    }
    expect(snapshotTime('20261121174744-18EA209CF4366735')?.toISOString()).to.equal('2026-11-21T17:47:44.000Z');
  });

  it('rejects what the server regex or Go time layout rejects', () => {
    for (const n of ['nonexistent', 'bad', '2026112117474-18EA', '20261121174744-', '20261121174744-XYZ', '20261321174744-AB', '20261121254744-AB', '']) {
      expect(isSnapshotName(n), n).to.equal(false);
    }
  });

  it('knows partition days', () => {
    expect(isPartitionName('20261120')).to.equal(true);
    expect(isPartitionName('20261131')).to.equal(false);
    expect(isPartitionName('202611')).to.equal(false);
  });
});

describe('victoria: VictoriaMetrics snapshot answers', () => {
  it('create: {"status":"ok","snapshot":…} (both versions)', () => {
    expect(parseVmCreate('{"status":"ok","snapshot":"20261121174807-18EA20A236F87D73"}')).to.equal('20261121174807-18EA20A236F87D73');
  });

  it('create: the Prometheus alias shape {"status":"success","data":{"name":…}}', () => {
    expect(parseVmCreate('{"status":"success","data":{"name":"20261121174744-18EA209CF4366735"}}')).to.equal('20261121174744-18EA209CF4366735');
  });

  it('create: an error body or a body without a valid name is an error', () => {
    expect(() => parseVmCreate('{"status":"error","msg":"cannot create snapshot: disk full"}')).to.throw(/disk full/);
    expect(() => parseVmCreate('{"status":"ok","snapshot":"../../etc"}')).to.throw(/no valid snapshot name/);
    expect(() => parseVmCreate('{"status":"ok"}')).to.throw(/no valid snapshot name/);
    expect(() => parseVmCreate('<html>proxy error</html>')).to.throw(/not JSON/);
  });

  it('list: multi-line JSON, one name per line (1.145 and 1.79.5)', () => {
    expect(parseVmList('{"status":"ok","snapshots":[\n"20261121174506-18EA20786F6590EC"\n]}')).to.deep.equal(['20261121174506-18EA20786F6590EC']);
    expect(parseVmList('{"status":"ok","snapshots":[\n"20261121174506-18EA20786F6590EC",\n"20261121174807-18EA20A236F87D73"\n]}')).to.deep.equal([
      '20261121174506-18EA20786F6590EC',
      '20261121174807-18EA20A236F87D73',
    ]);
  });

  it('list: empty', () => {
    expect(parseVmList('{"status":"ok","snapshots":[]}')).to.deep.equal([]);
  });

  it('list: errors', () => {
    expect(() => parseVmList('{"status":"error","msg":"boom"}')).to.throw(/boom/);
    expect(() => parseVmList('{"status":"ok","snapshots":[1]}')).to.throw(/non-string/);
  });

  it('delete: 200 ok is deleted (on 1.79 also for a missing well-formed name)', () => {
    expect(classifyVmDelete(200, '{"status":"ok"}')).to.equal('deleted');
  });

  it('delete: 1.145 answers a missing snapshot with 500 "cannot find snapshot": missing, not an error', () => {
    expect(classifyVmDelete(500, '{"status":"error","msg":"cannot find snapshot \\"20200101000000-0000000000000000\\""}')).to.equal('missing');
    expect(classifyVmDelete(500, '{"status":"error","msg":"cannot find snapshot \\"nonexistent\\""}')).to.equal('missing');
  });

  it('delete: 1.79 invalid-name 500, auth failures and plain text are errors for the caller', () => {
    const invalid =
      '{"status":"error","msg":"cannot delete snapshot \\"nonexistent\\": invalid snapshotName \\"nonexistent\\": unexpected snapshot name=\\"nonexistent\\"; it must match \\"^[0-9]{14}-[0-9A-Fa-f]+$\\" regexp"}';
    expect(classifyVmDelete(500, invalid)).to.equal(undefined);
    expect(classifyVmDelete(401, 'The provided authKey doesn\'t match -snapshotAuthKey')).to.equal(undefined);
    expect(classifyVmDelete(400, 'unsupported path requested: "/snapshot/foo"')).to.equal(undefined);
  });

  it('maps a name onto the data directory: snapshots/<name>, relPaths from the tree root', () => {
    const s = vmSnapshot('20261121174807-18EA20A236F87D73');
    expect(s).to.deep.include({ kind: 'metrics', handle: s.name, dir: 'snapshots/20261121174807-18EA20A236F87D73', relPathPrefix: '' });
    expect(s.createdAt.toISOString()).to.equal('2026-11-21T17:48:07.000Z');
    expect(() => vmSnapshot('x')).to.throw(TypeError);
  });
});

describe('victoria: authentication errors', () => {
  const sentKey = { authKey: true, basicAuth: false };
  const noKey = { authKey: false, basicAuth: false };

  it('1.145: 401 "doesn\'t match -snapshotAuthKey" names the flag and our option', () => {
    const p = detectAuthProblem(401, 'The provided authKey doesn\'t match -snapshotAuthKey', undefined, sentKey, NAMES.AUTH);
    expect(p?.flag).to.equal('snapshotAuthKey');
    expect(p?.hint).to.equal('-snapshotAuthKey does not match: pass the server\'s -snapshotAuthKey value with --auth-key');
  });

  it('1.145: 401 "Expected to receive non-empty authKey" when no key was sent', () => {
    const p = detectAuthProblem(401, 'Expected to receive non-empty authKey when -snapshotAuthKey is set', undefined, noKey, NAMES.AUTH);
    expect(p?.hint).to.equal('the server requires -snapshotAuthKey: pass its value with --auth-key');
  });

  it('1.79.5: 400 "invalid authKey … -snapshotAuthKey command line flag" is an auth error too', () => {
    const body =
      'remoteAddr: "127.0.0.1:38254"; requestURI: /snapshot/list?authKey=bad; invalid authKey "bad". It must match the value from -snapshotAuthKey command line flag';
    const p = detectAuthProblem(400, body, undefined, sentKey, NAMES.AUTH);
    expect(p?.flag).to.equal('snapshotAuthKey');
  });

  it('VictoriaLogs: -partitionManageAuthKey and -forceFlushAuthKey map to their options', () => {
    expect(detectAuthProblem(401, 'The provided authKey doesn\'t match -partitionManageAuthKey', undefined, sentKey, NAMES.AUTH)?.hint).to.contain(
      '--auth-key',
    );
    const ff = detectAuthProblem(401, 'Expected to receive non-empty authKey when -forceFlushAuthKey is set', undefined, noKey, NAMES.AUTH);
    expect(ff?.flag).to.equal('forceFlushAuthKey');
    expect(ff?.hint).to.contain('--force-flush-auth-key');
  });

  it('basic auth: 401 with WWW-Authenticate names -httpAuth.*', () => {
    const p = detectAuthProblem(401, '', 'Basic realm="VictoriaMetrics"', noKey, NAMES.AUTH);
    expect(p?.flag).to.equal('httpAuth');
    expect(p?.hint).to.contain('-httpAuth.username');
  });

  it('a 401/403 that names no flag (a proxy in front) points at the key the request carried', () => {
    expect(detectAuthProblem(403, 'Forbidden', undefined, sentKey, NAMES.AUTH)?.hint).to.equal('authentication failed: check --auth-key and basic auth credentials');
    expect(detectAuthProblem(401, 'Unauthorized', undefined, { ...noKey, forceFlush: true }, NAMES.AUTH)?.hint).to.equal(
      'authentication failed: check --force-flush-auth-key and basic auth credentials',
    );
  });

  it('a 400 that is not about keys is not an auth problem', () => {
    expect(detectAuthProblem(400, 'unsupported path requested: "/snapshot/foo"', undefined, sentKey, NAMES.AUTH)).to.equal(undefined);
  });

  it('redacts keys that 1.79 echoes (request URI and the wrong key) and our own secrets', () => {
    const body =
      'remoteAddr: "127.0.0.1:38306"; requestURI: /snapshot/foo?authKey=sk; unsupported path requested: "/snapshot/foo"; invalid authKey "guess". x';
    const out = redactSecrets(body, ['supersecret']);
    expect(out).to.contain('authKey=<redacted>');
    expect(out).to.contain('invalid authKey "<redacted>"');
    expect(out).not.to.contain('guess');
    expect(redactSecrets('key supersecret leaked', ['supersecret'])).to.equal('key <redacted> leaked');
  });

  it('takes the server\'s words from JSON msg/error or plain text', () => {
    expect(serverText('{"status":"error","msg":"cannot find snapshot \\"x\\""}')).to.equal('cannot find snapshot "x"');
    expect(serverText('{"status":"error","errorType":"422","error":"bad query"}')).to.equal('bad query');
    expect(serverText('Only POST method is allowed; got GET.\n')).to.equal('Only POST method is allowed; got GET.');
  });
});

describe('victoria: credentials in the server URL', () => {
  it('a password in the URL is basic auth, never in a message: not in the scheme error, and removed from server text', () => {
    let err: Error | undefined;
    try {
      new HttpClient('VictoriaMetrics', { url: 'htp://ops:s3cret-pw@vm:8428' });
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.equal('VictoriaMetrics URL must be http:// or https://, got "htp:" (host "vm:8428")');
    expect(() => new HttpClient('VictoriaLogs', { url: 'not-a-url' })).to.throw('VictoriaLogs URL "not-a-url" is not a URL: give its HTTP address, such as http://127.0.0.1:9428');
    expect(() => new HttpClient('VictoriaMetrics', { url: 'http://ops:s3cret-pw@vm:port' })).to.throw('VictoriaMetrics URL "http://***@vm:port" is not a URL');
    const http = new HttpClient('VictoriaMetrics', { url: 'http://ops:s3cret-pw@vm:8428' });
    expect(http.url('/snapshot/create')).to.equal('http://vm:8428/snapshot/create');
    expect(http.redact('denied for ops:s3cret-pw')).not.to.contain('s3cret-pw');
  });
});

describe('victoria: VictoriaLogs partition answers', () => {
  it('partition list: a JSON array of days; [] when empty', () => {
    expect(parseVlStringList('["20261120","20261121"]')).to.deep.equal(['20261120', '20261121']);
    expect(parseVlStringList('[]')).to.deep.equal([]);
  });

  it('snapshot create: an array of absolute paths (v1.44+), one per partition', () => {
    const body =
      '["/vlogs/partitions/20261119/snapshots/20261121183451-18EA232FF76771F8","/vlogs/partitions/20261120/snapshots/20261121183451-18EA232FF76771F9"]';
    const paths = parseVlStringList(body);
    expect(paths).to.have.length(2);
    const s = vlSnapshotFromPath(paths[0] ?? '');
    expect(s).to.deep.include({
      kind: 'logs',
      name: '20261121183451-18EA232FF76771F8',
      handle: '/vlogs/partitions/20261119/snapshots/20261121183451-18EA232FF76771F8',
      dir: 'partitions/20261119/snapshots/20261121183451-18EA232FF76771F8',
      relPathPrefix: 'partitions/20261119/',
      partition: '20261119',
    });
  });

  it('snapshot create: a single JSON string (v1.31-v1.43, lenient) and null', () => {
    expect(parseVlStringList('"/vlogs/partitions/20261121/snapshots/20261121180021-18EA214E431A0F3E"')).to.deep.equal([
      '/vlogs/partitions/20261121/snapshots/20261121180021-18EA214E431A0F3E',
    ]);
    expect(parseVlStringList('null')).to.deep.equal([]);
    expect(() => parseVlStringList('{"paths":[]}')).to.throw(/array of strings/);
    expect(() => parseVlStringList('[1]')).to.throw(/array of strings/);
  });

  it('relative paths (relative -storageDataPath, the newest code) map by their last four segments; the handle stays verbatim', () => {
    const rel = 'victoria-logs-data/partitions/20261121/snapshots/20261121180021-18EA214E431A0F3E';
    const s = vlSnapshotFromPath(rel);
    expect(s.handle).to.equal(rel);
    expect(s.dir).to.equal('partitions/20261121/snapshots/20261121180021-18EA214E431A0F3E');
    expect(vlSnapshotFromPath('partitions/20261121/snapshots/20261121180021-18EA214E431A0F3E/').dir).to.equal(s.dir);
    expect(vlSnapshotFromPath('./data//partitions/20261121/snapshots/20261121180021-18EA214E431A0F3E').dir).to.equal(s.dir);
  });

  it('rejects paths that are not partition snapshots', () => {
    expect(() => vlSnapshotFromPath('/vlogs/partitions/20261121')).to.throw(/does not end in/);
    expect(() => vlSnapshotFromPath('/vlogs/partitions/2026112/snapshots/20261121180021-18EA')).to.throw(/partition day/);
    expect(() => vlSnapshotFromPath('/vlogs/partitions/20261121/snapshots/latest')).to.throw(/snapshot name/);
    expect(() => vlSnapshotFromPath('/vlogs/other/20261121/snapshots/20261121180021-18EA')).to.throw(/does not end in/);
  });

  it('delete: 204 deleted; "doesn\'t exist" (second delete) missing; "cannot be found across active partitions" detached', () => {
    expect(classifyVlDelete(204, '')).to.equal('deleted');
    expect(classifyVlDelete(400, 'snapshot "20261121183451-18EA232FF76771F8" doesn\'t exist at "/vlogs/partitions/20261119"\n')).to.equal('missing');
    expect(classifyVlDelete(400, 'partition path "/vlogs/partitions/20261101" cannot be found across active partitions\n')).to.equal('detached');
  });

  it('delete: other 400s, 401 and 405 are errors for the caller', () => {
    expect(classifyVlDelete(400, 'missing `path` query arg')).to.equal(undefined);
    expect(classifyVlDelete(400, 'unsupported snapshot name "x" at "x": …')).to.equal(undefined);
    expect(classifyVlDelete(400, 'snapshot path "a/b" must point to a directory inside "snapshots"')).to.equal(undefined);
    expect(classifyVlDelete(401, 'The provided authKey doesn\'t match -partitionManageAuthKey')).to.equal(undefined);
    expect(classifyVlDelete(405, 'Only POST method is allowed; got GET.')).to.equal(undefined);
  });

  it('recognises the v1.31-v1.43 refusal of a create without name= and unsupported paths', () => {
    expect(isLegacyCreateRefusal({ status: 400, body: 'cannot create snapshot from partition "", because it is missing' })).to.equal(true);
    expect(isLegacyCreateRefusal({ status: 400, body: 'snapshot creation for partition_prefix=2026 was rejected due to found read-only partitions: [x]' })).to.equal(false);
    expect(isUnsupportedPath({ status: 400, body: 'unsupported path requested: "/internal/partition/snapshot/delete"' })).to.equal(true);
  });
});

describe('victoria: counting answers', () => {
  it('VictoriaMetrics instant count: a one-element vector, [] means 0', () => {
    expect(parseInstantCount('{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1795286107,"1000"]}]},"stats":{"seriesFetched": "50","executionTimeMsec":5}}')).to.equal(1000);
    expect(parseInstantCount('{"status":"success","data":{"resultType":"vector","result":[]}}')).to.equal(0);
  });

  it('VictoriaMetrics instant count: errors and odd values', () => {
    expect(() => parseInstantCount('{"status":"error","errorType":"422","error":"latency_offset=0ms is out of allowed range [1ms ... 3153600000000ms]"}')).to.throw(
      /latency_offset/,
    );
    expect(() => parseInstantCount('{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1.5"]}]}}')).to.throw(/integer/);
    expect(() => parseInstantCount('{"status":"success","data":{"resultType":"matrix","result":[]}}')).to.throw(/instant vector/);
  });

  it('VictoriaMetrics count_values answer: series = Σ count, samples = Σ n × count', () => {
    const answer = (elements: string) => `{"status":"success","data":{"resultType":"vector","result":[${elements}]}}`;
    expect(parseCountValues(answer('{"metric":{"n":"200"},"value":[1795286107,"30"]},{"metric":{"n":"1.2345678e+07"},"value":[1795286107,"2"]}'))).to.deep.equal({ series: 32, samples: 30 * 200 + 2 * 12345678 });
    expect(parseCountValues(answer(''))).to.deep.equal({ series: 0, samples: 0 });
    expect(() => parseCountValues(answer('{"metric":{},"value":[1,"3"]}'))).to.throw(/label n undefined is not a non-negative integer/);
    expect(() => parseCountValues(answer('{"metric":{"n":"2"},"value":[1,"-3"]}'))).to.throw(/value "-3"/);
  });

  it('count window: starts after 1971 (1.79 answers [] for windows reaching the epoch), end exclusive', () => {
    const end = new Date(Date.UTC(2026, 10, 21, 18, 0, 0));
    const w = countWindow(end);
    expect(w.time).to.equal(((end.getTime() - 1) / 1000).toFixed(3));
    const seconds = Number(w.window.replace(/s$/, ''));
    expect(end.getTime() / 1000 - seconds).to.be.greaterThan(Date.UTC(1971, 0, 1) / 1000 - 1);
    const open = countWindow(undefined, undefined, end.getTime());
    expect(Number(open.time)).to.equal((end.getTime() + 2 * 86400_000) / 1000);
  });

  it('count window from a recorded start: the same window at backup time and in a drill', () => {
    const end = new Date('2026-11-21T18:00:00.000Z');
    const start = new Date('2026-10-21T19:00:00.000Z');
    const w = countWindow(end, start);
    expect(w).to.deep.equal(countWindow(new Date(end), new Date(start)));
    expect(Number(w.window.replace(/s$/, ''))).to.equal(Math.floor((end.getTime() - 1 - start.getTime()) / 1000));
    expect(countWindow(end, new Date(0)), 'never before 1971').to.deep.equal(countWindow(end));
  });

  it('VictoriaMetrics export line: samples = values', () => {
    expect(exportLineSamples('{"metric":{"__name__":"m","series":"0"},"values":[1,2,3],"timestamps":[1,2,3]}')).to.equal(3);
    expect(() => exportLineSamples('{"metric":{}}')).to.throw(/without values/);
  });

  it('VictoriaLogs day counts: {"_time":"…T00:00:00Z","n":"<N>"} per line', () => {
    const body = '{"_time":"2026-11-21T00:00:00Z","n":"100"}\n{"_time":"2026-11-20T00:00:00Z","n":"100"}\n{"_time":"2026-11-19T00:00:00Z","n":"101"}\n';
    expect(parseDayCounts(body)).to.deep.equal({ '20261121': 100, '20261120': 100, '20261119': 101 });
    expect(parseDayCounts('')).to.deep.equal({});
  });

  it('VictoriaLogs day counts: a plain-text error after a 200 is an error', () => {
    expect(() => parseDayCounts('{"_time":"2026-11-21T00:00:00Z","n":"1"}\ncannot execute query: timeout\n')).to.throw(/unexpected line/);
    expect(() => parseDayCounts('{"_time":"2026-11-21T00:00:00Z","count(*)":"1"}')).to.throw(/without _time and n/);
  });

  it('VictoriaLogs count query: named result, optional _time filter for [start, end)', () => {
    const start = new Date(Date.UTC(2026, 9, 21, 1));
    const end = new Date(Date.UTC(2026, 10, 21));
    expect(dayCountQuery()).to.equal('* | stats by (_time:1d) count() as n');
    expect(dayCountQuery({ end })).to.equal('_time:<2026-11-21T00:00:00.000Z | stats by (_time:1d) count() as n');
    expect(dayCountQuery({ start, end })).to.equal('_time:[2026-10-21T01:00:00.000Z, 2026-11-21T00:00:00.000Z) | stats by (_time:1d) count() as n');
    expect(dayCountQuery({ start })).to.equal('_time:>=2026-10-21T01:00:00.000Z | stats by (_time:1d) count() as n');
  });
});

describe('victoria: server version', () => {
  it('Debian builds report empty labels: undefined', () => {
    expect(parseAppVersion('vm_app_version{version="", short_version=""} 1\nvm_snapshots 1\n')).to.equal(undefined);
  });

  it('upstream builds: short_version', () => {
    expect(parseAppVersion('x 1\nvm_app_version{version="victoria-metrics-20260605-101010-tags-v1.145.0-0-gabcdef",short_version="v1.145.0"} 1\n')).to.equal('v1.145.0');
    expect(parseAppVersion('vm_app_version{version="victoria-logs-20260127-tags-v1.44.0"} 1')).to.equal('victoria-logs-20260127-tags-v1.44.0');
    expect(parseAppVersion('nothing here')).to.equal(undefined);
  });
});

describe('victoria: retention, and where a count starts', () => {
  const DAY = 86_400_000;
  it('-retentionPeriod as VictoriaMetrics reads it: bare numbers and M are months of 31 days, else a duration', () => {
    expect(parseRetention('1')).to.equal(31 * DAY);
    expect(parseRetention('1.5M')).to.equal(1.5 * 31 * DAY);
    expect(parseRetention('7d')).to.equal(7 * DAY);
    expect(parseRetention('2w3d')).to.equal(17 * DAY);
    expect(parseRetention('100y')).to.equal(100 * 365 * DAY);
    expect(parseRetention('12h')).to.equal(12 * 3600_000);
    for (const bad of ['', 'forever', '7 d', '-1d', 'd']) expect(parseRetention(bad), bad).to.equal(undefined);
  });

  it('the flag as /metrics lists it (VictoriaMetrics 1.79 and 1.145, VictoriaLogs)', () => {
    const page = 'vm_app_version{version="", short_version=""} 1\nflag{name="retentionTimezoneOffset", value="0s", is_set="false"} 1\nflag{name="retentionPeriod", value="3d", is_set="true"} 1\n';
    expect(flagValue(page, 'retentionPeriod')).to.equal('3d');
    expect(flagValue(page, 'futureRetention')).to.equal(undefined);
  });

  it('a count starts an hour after the retention deadline; from the first sample when the retention is unknown or reaches before the floor', () => {
    const now = new Date('2026-11-22T06:00:00.000Z');
    const floor = new Date(Date.UTC(1971, 0, 1));
    expect(countStart(31 * DAY, now, floor)!.toISOString()).to.equal('2026-10-22T07:00:00.000Z');
    expect(countStart(undefined, now, floor)).to.equal(undefined);
    expect(countStart(100 * 365 * DAY, now, floor)).to.equal(undefined);
  });

  it("a count query gives up after the caller's timeout, not the 5-minute default", async () => {
    // A server that accepts the request and never answers, as a database busy counting would.
    const server = await startLoopbackServer(() => {});
    const url = server.url;
    try {
      for (const [product, count] of [
        ['VictoriaMetrics', (http: HttpClient) => countMetrics(http, { timeoutMs: 400 })],
        ['VictoriaLogs', (http: HttpClient) => countLogs(http, { timeoutMs: 400 })],
      ] as const) {
        const t0 = Date.now();
        const err = (await count(new HttpClient(product, { url })).catch((e: unknown) => e)) as Error;
        expect(err, product).to.be.instanceOf(Error);
        expect(err.message, product).to.contain(url);
        expect(Date.now() - t0, product).to.be.within(350, 10_000);
      }
    } finally {
      await server.close();
    }
  });

  it('VictoriaLogs: a backup counts only the days it has a partition snapshot of (late data can make a new partition after the snapshot)', async () => {
    const source = {
      kind: 'logs',
      countStart: async () => undefined,
      counts: async () => ({ kind: 'logs', rows: 130, partitions: { '20261121': 100, '20261122': 30 } }),
    } as unknown as SnapshotSource;
    const snapshot = { name: '20261122060000-AA', partition: '20261121' } as unknown as Snapshot;
    const counted = await countForBackup(source, new Date('2026-11-22T06:00:00.000Z'), [snapshot]);
    expect(counted.counts).to.deep.equal({ rows: 100, 'rows.20261121': 100 });
  });

  it('a backup records the range it counted, ending five minutes before the snapshot; a snapshot older than the start is refused, not counted as empty', async () => {
    const asked: CountOptions[] = [];
    const source = (start: Date | undefined) =>
      ({
        kind: 'metrics',
        countStart: async () => start,
        counts: async (o: CountOptions) => (asked.push(o), { kind: 'metrics', series: 2, samples: 20 }),
      }) as unknown as SnapshotSource;
    const snapshot = new Date('2026-11-22T06:00:00.000Z');
    // Data stamped shortly before the snapshot may arrive after it: counted, it would be missing from the backup.
    expect(LATE_DATA_MARGIN_MS).to.equal(300_000);
    const end = new Date('2026-11-22T05:55:00.000Z');
    const start = new Date('2026-10-22T07:00:00.000Z');
    expect(await countForBackup(source(start), snapshot, [])).to.deep.equal({ counts: { series: 2, samples: 20 }, countedFrom: start.toISOString(), countedBefore: end.toISOString() });
    expect(asked.at(-1)).to.deep.equal({ end, start });
    expect(await countForBackup(source(undefined), snapshot, [])).to.deep.equal({ counts: { series: 2, samples: 20 }, countedBefore: end.toISOString() });
    expect(asked.at(-1)).to.deep.equal({ end });
    // The plugin's countTimeoutSeconds, through `companion counts --timeout`, reaches the query.
    await countForBackup(source(undefined), snapshot, [], 1_800_000);
    expect(asked.at(-1)).to.deep.equal({ end, timeoutMs: 1_800_000 });
    const calls = asked.length;
    await countForBackup(source(new Date(end.getTime() + 1)), snapshot, []).then(
      () => expect.fail('counted'),
      (err: Error) =>
        expect(err.message).to.equal(
          'the count would end at 2026-11-22T05:55:00.000Z (five minutes before the snapshot of 2026-11-22T06:00:00.000Z), before what the server keeps counting from (2026-11-22T05:55:00.001Z, an hour inside its retention): take a new snapshot',
        ),
    );
    expect(asked.length, 'nothing counted').to.equal(calls);
  });
});
