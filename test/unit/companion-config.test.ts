/** Companion configuration: flag, else environment, else default; errors that say what to fix. */
import { expect } from 'chai';
import { CompanionError } from '../../src/companion/errors.js';
import { describeConfig, formatDuration, parseCompanionConfig, parseDuration } from '../../src/companion/config.js';
import { COMPANION_EXIT } from '../../src/companion/protocol.js';
import { checkExpectedKeys, parseVerifyArgs, withHost } from '../../src/companion/verify.js';

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(CompanionError);
    expect((err as CompanionError).exitCode).to.equal(COMPANION_EXIT.usage);
    return (err as Error).message;
  }
  expect.fail('expected a usage error');
}

describe('companion configuration', () => {
  it('uses the defaults of the contract when only the kind is given', () => {
    const c = parseCompanionConfig(['--kind', 'metrics'], {});
    expect(c).to.include({
      kind: 'metrics',
      url: 'http://127.0.0.1:8428',
      dataDir: '/victoria-data',
      stateDir: '/var/run/velero-plugin-victoria',
      maxSnapshotAgeMs: 6 * 3600_000,
    });
    expect(c.authKey).to.equal(undefined);
    expect(c.forceFlushAuthKey).to.equal(undefined);
    expect(parseCompanionConfig([], { VICTORIA_KIND: 'logs' }).url).to.equal('http://127.0.0.1:9428');
  });

  it('takes every setting from the environment', () => {
    const c = parseCompanionConfig([], {
      VICTORIA_KIND: 'logs',
      VICTORIA_URL: 'http://vl:9428/prefix',
      VICTORIA_DATA_DIR: '/data',
      VICTORIA_AUTH_KEY: 'k1',
      VICTORIA_FORCE_FLUSH_AUTH_KEY: 'k2',
      COMPANION_STATE_DIR: '/state',
      COMPANION_MAX_SNAPSHOT_AGE: '90m',
    }, { serve: true });
    expect(c).to.include({ kind: 'logs', url: 'http://vl:9428/prefix', dataDir: '/data', authKey: 'k1', forceFlushAuthKey: 'k2', stateDir: '/state', maxSnapshotAgeMs: 90 * 60_000 });
    expect(c.authKeyOption).to.match(/^VICTORIA_AUTH_KEY\b/);
    expect(c.forceFlushAuthKeyOption).to.match(/^VICTORIA_FORCE_FLUSH_AUTH_KEY\b/);
  });

  it('prefers flags over the environment, and names the flag in auth hints then', () => {
    const env = { VICTORIA_KIND: 'logs', VICTORIA_URL: 'http://env:1', VICTORIA_AUTH_KEY: 'env-key', COMPANION_STATE_DIR: '/env', COMPANION_MAX_SNAPSHOT_AGE: '1h' };
    const c = parseCompanionConfig(
      ['--kind', 'metrics', '--url', 'http://flag:2', '--auth-key', 'flag-key', '--state-dir', '/flag', '--data-dir', '/d', '--max-snapshot-age', '2h'],
      env,
      { serve: true },
    );
    expect(c).to.include({ kind: 'metrics', url: 'http://flag:2', authKey: 'flag-key', stateDir: '/flag', dataDir: '/d', maxSnapshotAgeMs: 2 * 3600_000, authKeyOption: '--auth-key' });
  });

  it('treats empty variables as unset (an empty Secret value)', () => {
    const c = parseCompanionConfig([], { VICTORIA_KIND: 'metrics', VICTORIA_AUTH_KEY: '', VICTORIA_URL: '' });
    expect(c.authKey).to.equal(undefined);
    expect(c.url).to.equal('http://127.0.0.1:8428');
  });

  it('requires a kind, and rejects a bad one naming where it came from', () => {
    expect(usageMessage(() => parseCompanionConfig([], {}))).to.equal('--kind (or VICTORIA_KIND) is required: metrics or logs');
    expect(usageMessage(() => parseCompanionConfig([], { VICTORIA_KIND: 'traces' }))).to.equal('VICTORIA_KIND is "traces": it must be metrics or logs');
    expect(usageMessage(() => parseCompanionConfig(['--kind', 'Metrics'], {}))).to.equal('--kind is "Metrics": it must be metrics or logs');
  });

  it('rejects bad URLs without echoing them (they may hold credentials)', () => {
    const msg = usageMessage(() => parseCompanionConfig(['--kind', 'metrics'], { VICTORIA_URL: 'user:secret-pass@host' }));
    expect(msg).to.match(/^VICTORIA_URL /);
    expect(msg).not.to.include('secret-pass');
    expect(usageMessage(() => parseCompanionConfig(['--kind', 'metrics', '--url', 'ftp://h/'], {}))).to.match(/--url must be an http/);
  });

  it('rejects unknown flags, and --max-snapshot-age outside serve', () => {
    expect(usageMessage(() => parseCompanionConfig(['--kind', 'metrics', '--bogus'], {}))).to.match(/bogus/);
    expect(usageMessage(() => parseCompanionConfig(['--kind', 'metrics', '--max-snapshot-age', '1h'], {}))).to.match(/max-snapshot-age/);
  });

  it('rejects a value flag given twice, naming the flag and neither value (they may be keys)', () => {
    const message = usageMessage(() => parseCompanionConfig(['--kind', 'metrics', '--auth-key', 'first-secret', '--auth-key=second-secret'], {}));
    expect(message).to.equal('--auth-key is given more than once: give it once');
    expect(usageMessage(() => parseVerifyArgs(['--expect', '{}', '--kind', 'metrics', '--expect', '{}']))).to.match(/^--expect is given more than once/);
  });

  it('reads COMPANION_MAX_SNAPSHOT_AGE only in serve: a bad value never breaks the hooks', () => {
    expect(parseCompanionConfig([], { VICTORIA_KIND: 'metrics', COMPANION_MAX_SNAPSHOT_AGE: 'soon' }).maxSnapshotAgeMs).to.equal(6 * 3600_000);
    expect(usageMessage(() => parseCompanionConfig([], { VICTORIA_KIND: 'metrics', COMPANION_MAX_SNAPSHOT_AGE: 'soon' }, { serve: true }))).to.equal(
      'COMPANION_MAX_SNAPSHOT_AGE: "soon" is not a duration above zero such as 6h, 90m or 1h30m',
    );
  });

  it('parses and formats durations', () => {
    expect(parseDuration('6h')).to.equal(6 * 3600_000);
    expect(parseDuration('1h30m')).to.equal(90 * 60_000);
    expect(parseDuration('45s')).to.equal(45_000);
    expect(parseDuration('1.5h')).to.equal(90 * 60_000);
    expect(parseDuration('2d')).to.equal(2 * 86_400_000);
    expect(parseDuration('500ms')).to.equal(500);
    for (const bad of ['', '6', 'h', '6 h', '-1h', '0s', '1h 30m']) expect(() => parseDuration(bad), bad).to.throw();
    expect(formatDuration(6 * 3600_000)).to.equal('6h');
    expect(formatDuration(90 * 60_000 + 5000)).to.equal('1h30m5s');
    expect(formatDuration(2000)).to.equal('2s');
    expect(formatDuration(500)).to.equal('500ms');
    expect(formatDuration(1500)).to.equal('1500ms');
  });

  it('describes itself without keys or URL credentials', () => {
    const c = parseCompanionConfig([], { VICTORIA_KIND: 'metrics', VICTORIA_URL: 'http://admin:pw-123@vm:8428', VICTORIA_AUTH_KEY: 'the-key' });
    const text = describeConfig(c);
    expect(text).to.include('url=http://vm:8428').and.include('auth-key=set').and.include('force-flush-auth-key=unset');
    expect(text).not.to.include('pw-123');
    expect(text).not.to.include('the-key');
  });
});

describe('companion verify arguments', () => {
  it('takes the counted range from --start and --end, and names a bad one', () => {
    const { options, rest } = parseVerifyArgs(['--expect', '{"rows":1}', '--start', '2026-10-22T07:00:00.000Z', '--end=2026-11-21T12:00:00Z', '--kind', 'logs']);
    expect(options).to.deep.include({ expected: { rows: 1 }, start: new Date('2026-10-22T07:00:00.000Z'), end: new Date('2026-11-21T12:00:00Z') });
    expect(rest).to.deep.equal(['--kind', 'logs']);
    expect(() => parseVerifyArgs(['--expect', '{"rows":1}', '--start', 'last month'])).to.throw(CompanionError, /--start "last month" is not an RFC 3339 time with its zone/);
    // Without a zone it would be read in the container's local time: refused, as are dates alone.
    for (const t of ['2026-11-22T11:27:00', '2026-11-22', 'Nov 22 2026']) expect(() => parseVerifyArgs(['--expect', '{"rows":1}', '--end', t]), t).to.throw(CompanionError, /is not an RFC 3339 time/);
    expect(parseVerifyArgs(['--expect', '{"rows":1}', '--end', '2026-11-22T12:27:00+01:00']).options.end?.toISOString()).to.equal('2026-11-22T11:27:00.000Z');
    expect(() => parseVerifyArgs(['--expect', '{"rows":1}', '--start', '2026-11-22T00:00:00Z', '--end', '2026-11-21T00:00:00Z'])).to.throw(CompanionError, /--start .* is not before --end/);
  });

  it('--host asks another host on the URL\'s port, keeping scheme, credentials and path (a drill: the copy in its own pod)', () => {
    expect(parseVerifyArgs(['--expect', '{"rows":1}', '--host', '127.0.0.1', '--kind', 'logs'])).to.deep.include({ rest: ['--kind', 'logs'] });
    expect(parseVerifyArgs(['--expect', '{"rows":1}', '--host', '127.0.0.1']).options.host).to.equal('127.0.0.1');
    expect(() => parseVerifyArgs(['--expect', '{"rows":1}', '--host', 'http://vm:8428'])).to.throw(CompanionError, /--host "http:\/\/vm:8428" is not a host name or address/);
    expect(withHost('http://vmsingle.monitoring.svc:8428', '127.0.0.1')).to.equal('http://127.0.0.1:8428');
    expect(withHost('https://user:pw@10.0.0.7:9428/select/', '127.0.0.1')).to.equal('https://user:pw@127.0.0.1:9428/select/');
    expect(withHost('http://vm.example.com/prefix', '[::1]')).to.equal('http://[::1]/prefix');
  });

  it('--count-timeout bounds the count (the drill passes countTimeoutSeconds); without it the client\'s default', () => {
    expect(parseVerifyArgs(['--expect', '{"rows":1}', '--count-timeout', '45m']).options.countTimeoutMs).to.equal(45 * 60_000);
    expect(parseVerifyArgs(['--expect', '{"rows":1}']).options).not.to.have.property('countTimeoutMs');
    expect(() => parseVerifyArgs(['--expect', '{"rows":1}', '--count-timeout', 'soon'])).to.throw(CompanionError, /--count-timeout/);
  });

  it('takes another kind\'s counts as a usage error (exit 2), not as a mismatch of the restore', () => {
    expect(() => checkExpectedKeys('metrics', { series: 40, samples: 12000 })).not.to.throw();
    expect(() => checkExpectedKeys('logs', { rows: 3, 'rows.20261121': 3 })).not.to.throw();
    expect(usageMessage(() => checkExpectedKeys('metrics', { rows: 3, 'rows.20261121': 3 }))).to.equal(
      '--expect holds rows, rows.20261121, which metrics counts never have (series and samples): give the counts of this database\'s backup, or check --kind / VICTORIA_KIND',
    );
    expect(usageMessage(() => checkExpectedKeys('logs', { rows: 1, series: 2, 'rows.2026': 1 }))).to.match(/^--expect holds series, rows\.2026, which logs counts never have \(rows and rows\.YYYYMMDD\)/);
  });
});
