import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { RetryReporter } from '../../src/store/retry-report.js';
import { captureOutput } from '../support/capture-output.js';
import { loopbackServerPerTest } from '../support/loopback-server.js';

/** A reporter on a clock the test moves. */
function reporter(): { lines: string[]; clock: { t: number }; r: RetryReporter } {
  const lines: string[] = [];
  const clock = { t: 1_000_000 };
  return { lines, clock, r: new RetryReporter((line) => lines.push(line), { now: () => clock.t }) };
}

describe('store retries, told at a bounded rate', () => {
  it('says the first retry of a reason with the attempt, the reason and the delay', () => {
    const { lines, r } = reporter();
    r.onRetry({ attempt: 2, maxAttempts: 10, reason: 'SlowDown', status: 503, delayMs: 1234 });
    r.onRetry({ attempt: 1, maxAttempts: 10, reason: 'resume GET: ECONNRESET', delayMs: 0 });
    r.onRetry({ attempt: 3, maxAttempts: 10, reason: 'InternalError', status: 500, target: 'restore-plan:r1/b1/data/x', delayMs: 80 });
    r.onRetry({ attempt: 1, maxAttempts: 10, reason: 'TimeoutError' });
    // A HEAD's error answer has no body: the SDK calls it Unknown, and the status is the reason.
    r.onRetry({ attempt: 1, maxAttempts: 10, reason: 'Unknown', status: 500, delayMs: 5 });
    r.onRetry({ attempt: 1, maxAttempts: 10, reason: 'HTTP 503', status: 503, delayMs: 5 });
    expect(lines).to.deep.equal([
      'S3 retry: attempt 2 of 10 failed (SlowDown, HTTP 503), next attempt in 1.2 s',
      'S3 retry: attempt 1 of 10 failed (resume GET: ECONNRESET), next attempt at once',
      'S3 retry: restore-plan:r1/b1/data/x: attempt 3 of 10 failed (InternalError, HTTP 500), next attempt in 80 ms',
      'S3 retry: attempt 1 of 10 failed (TimeoutError)',
      'S3 retry: attempt 1 of 10 failed (HTTP 500), next attempt in 5 ms',
      'S3 retry: attempt 1 of 10 failed (HTTP 503), next attempt in 5 ms',
    ]);
    expect(r.summary()).to.equal('6 (SlowDown: 1, resume GET: ECONNRESET: 1, InternalError: 1, TimeoutError: 1, HTTP 500: 1, HTTP 503: 1)');
  });

  it('says a reason at most once per 10 s, counting the retries left unsaid in its next line; other reasons are not held back', () => {
    const { lines, clock, r } = reporter();
    const slowDown = (attempt: number) => r.onRetry({ attempt, maxAttempts: 10, reason: 'SlowDown', status: 503, delayMs: 1000 });
    slowDown(1);
    for (let i = 0; i < 5; i++) {
      clock.t += 1000;
      slowDown(2);
    }
    r.onRetry({ attempt: 1, maxAttempts: 10, reason: 'ECONNRESET', delayMs: 50 });
    expect(lines).to.have.length(2);
    clock.t += 5000; // 10 s after the first SlowDown line
    slowDown(3);
    expect(lines.slice(1)).to.deep.equal([
      'S3 retry: attempt 1 of 10 failed (ECONNRESET), next attempt in 50 ms',
      'S3 retry: attempt 3 of 10 failed (SlowDown, HTTP 503), next attempt in 1.0 s; 5 more retries for this reason since its last line',
    ]);
    clock.t += 10_000;
    slowDown(4);
    expect(lines.at(-1), 'nothing was left unsaid since').to.equal('S3 retry: attempt 4 of 10 failed (SlowDown, HTTP 503), next attempt in 1.0 s');
  });

  it('sums up by reason, most frequent first; end() says the totals only when some retries were left unsaid', () => {
    const { lines, clock, r } = reporter();
    expect(r.summary()).to.equal(undefined);
    r.onRetry({ attempt: 1, maxAttempts: 10, reason: 'ECONNRESET', delayMs: 10 });
    expect(r.summary()).to.equal('1 (ECONNRESET: 1)');
    r.end();
    expect(lines, 'every retry was said').to.have.length(1);
    for (let i = 0; i < 3; i++) r.onRetry({ attempt: 1, maxAttempts: 10, reason: 'SlowDown', status: 503, delayMs: 10 });
    expect(r.summary()).to.equal('4 (SlowDown: 3, ECONNRESET: 1)');
    r.end();
    expect(lines.slice(2)).to.deep.equal(['S3 retries in all: 4 (SlowDown: 3, ECONNRESET: 1); 2 of them not shown above']);
    r.end();
    expect(lines, 'said once').to.have.length(3);
    clock.t += 10_000;
    r.onRetry({ attempt: 2, maxAttempts: 10, reason: 'SlowDown', status: 503, delayMs: 10 });
    expect(lines.at(-1), 'the unsaid ones were counted by end() already').to.match(/\(SlowDown, HTTP 503\), next attempt in 10 ms$/);
  });

  it('never prints a URL\'s query or a signature', () => {
    const { lines, r } = reporter();
    r.onRetry({ attempt: 1, maxAttempts: 10, reason: 'Error: GET https://s3.example.com/b/k?X-Amz-Credential=AKIA&X-Amz-Signature=deadbeef failed', delayMs: 10 });
    r.onRetry({ attempt: 1, maxAttempts: 10, reason: 'X-Amz-Signature=deadbeef', target: 'k', delayMs: 10 });
    expect(lines.join('\n')).not.to.include('deadbeef').and.not.to.include('AKIA');
    expect(r.summary()).not.to.include('deadbeef');
  });
});

describe('store retries in the CLI: a restore from a plan', () => {
  const startServer = loopbackServerPerTest();

  it('says each retry of the plan\'s GET on stderr, naming the plan and never its URL', async () => {
    let requests = 0;
    const server = await startServer((_req, res) => {
      // Throttled once, then gone: the restore fails fast after one retry.
      if (requests++ === 0) res.writeHead(503, { 'content-type': 'application/xml' }).end('<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
      else res.writeHead(404, { 'content-type': 'application/xml' }).end('<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>');
    });
    const url = `${server.url}/bucket/plans/r1.json?X-Amz-Signature=deadbeefcafe`;
    const { error, stdout, stderr } = await captureOutput(() =>
      main(['restore', '--plan-url', url, '--plan-sha256', 'a'.repeat(64), '--data-dir', join(mkdtempSync(join(tmpdir(), 'retry-report-')), 'data'), '--json']),
    );
    expect(error?.message).to.match(/the object does not exist \(HTTP 404 NoSuchKey/);
    expect(stderr).to.match(/^S3 retry: the restore plan: attempt 1 of 10 failed \(SlowDown, HTTP 503\), next attempt in (\d+ ms|\d\.\d s)\n$/);
    expect(stdout, 'the retries stay off stdout').not.to.include('S3 retry');
    expect(stdout + stderr).not.to.include('deadbeefcafe');
  });
});
