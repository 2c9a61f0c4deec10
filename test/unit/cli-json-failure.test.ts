/**
 * --json on failure: backup, restore, list and verify print one JSON object on stdout when they
 * fail, with the error as stderr shows it, and still fail. In-process through the CLI's main(), on
 * file:// stores (the real binary against S3: test/integration/cli-backup.test.ts).
 */
import { expect } from 'chai';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { redact } from '../../src/common/redact.js';
import { COMPLETE_KEY } from '../../src/engine/manifest.js';
import { captureOutput } from '../support/capture-output.js';
import { loopbackServerPerTest } from '../support/loopback-server.js';
import { writeSmallBackup } from '../support/store-helpers.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

interface Run {
  code?: number | undefined;
  /** What main threw: src/main.ts prints it on stderr (redacted) and exits 1. */
  error?: Error;
  stdout: string;
  stderr: string;
}

/** The CLI's main() with stdout and stderr captured. */
async function cli(args: string[]): Promise<Run> {
  const { value: code, error, stdout, stderr } = await captureOutput(() => main(args));
  return { ...(error ? { error } : { code }), stdout, stderr };
}

/** stdout is exactly one line, a JSON object: what a script parses. */
function onlyObject(run: Run): Record<string, unknown> {
  const lines = run.stdout.split('\n');
  expect(lines, run.stdout).to.have.length(2);
  expect(lines[1]).to.equal('');
  const parsed: unknown = JSON.parse(lines[0]!);
  expect(parsed).to.be.an('object');
  return parsed as Record<string, unknown>;
}

/** A failure that src/main.ts reports: its stderr line is the object's error. */
function failedWith(run: Run): Record<string, unknown> {
  expect(run.error, run.stdout + run.stderr).to.be.instanceOf(Error);
  const object = onlyObject(run);
  expect(object.error).to.equal(redact(run.error!.message));
  return object;
}

/** A small backup `b1` in a file:// store under a new directory; the directory. */
async function fileBackup(): Promise<string> {
  const dir = tmp('cli-json-');
  await writeSmallBackup(dir, { 'metadata/minTimestampForCompositeIndex': '12345678', 'index.bin': 'index bytes' });
  return dir;
}

describe('CLI --json on failure', () => {
  it('backup: a database that cannot be reached prints the backup, complete false, the kind and the error', async () => {
    const dir = tmp('cli-json-');
    // Nothing listens on port 9: the snapshot request is refused at once.
    const run = await cli(['backup', '--kind', 'metrics', '--url', 'http://127.0.0.1:9', '--data-dir', dir, '--dst', `file://${dir}/store/`, '--name', 'b1', '--json']);
    const object = failedWith(run);
    expect(object).to.deep.equal({ backup: `file://${dir}/store/b1`, complete: false, kind: 'metrics', error: object.error });
    expect(object.error).to.match(/^VictoriaMetrics POST http:\/\/127\.0\.0\.1:9\/snapshot\/create: connection refused/);
  });

  it('restore: an incomplete backup prints the backup, the data directory, verified false and the error', async () => {
    const dir = await fileBackup();
    rmSync(join(dir, 'store', 'b1', COMPLETE_KEY));
    const dataDir = join(dir, 'data');
    const run = await cli(['restore', '--src', `file://${dir}/store/b1`, '--data-dir', dataDir, '--json']);
    const object = failedWith(run);
    expect(object).to.deep.equal({ backup: `file://${dir}/store/b1`, dataDir, verified: false, error: object.error });
    expect(object.error).to.match(/b1 is incomplete \(no victoria_complete\.ignore\)/);
  });

  it('verify: a tampered object is ok false with problems and an error, also on stderr; a backup that cannot be opened has the same shape', async () => {
    const dir = await fileBackup();
    const good = await cli(['verify', '--src', `file://${dir}/store/b1`, '--json']);
    expect(good.code).to.equal(0);
    expect(onlyObject(good)).to.include({ ok: true }).and.not.to.have.property('error');

    const part = readdirSync(join(dir, 'store', 'b1'), { recursive: true, encoding: 'utf8' }).find((p) => p.startsWith('index.bin/'))!;
    writeFileSync(join(dir, 'store', 'b1', part), 'INDEX BYTES');
    const bad = await cli(['verify', '--src', `file://${dir}/store/b1`, '--json']);
    expect(bad.code).to.equal(1);
    const object = onlyObject(bad);
    expect(object).to.include({ backup: `file://${dir}/store/b1`, ok: false, files: 2 });
    expect(object.problems).to.deep.equal([{ path: 'index.bin', problem: (object.problems as Array<{ problem: string }>)[0]!.problem }]);
    expect(object.error).to.match(/^file:\/\/.*\/b1: 1 of 2 file\(s\) failed verification \(index\.bin: SHA-256 [0-9a-f]{64} does not match the manifest/);
    expect(bad.stderr).to.equal(`velero-plugin-victoria: ${object.error as string}\n`);

    rmSync(join(dir, 'store', 'b1', COMPLETE_KEY));
    const incomplete = await cli(['verify', '--src', `file://${dir}/store/b1`, '--json']);
    const failed = failedWith(incomplete);
    expect(failed).to.deep.equal({ backup: `file://${dir}/store/b1`, ok: false, files: 0, bytesRead: 0, problems: [], error: failed.error });
  });

  it('list: a root that is not there prints the root and the error', async () => {
    const dir = tmp('cli-json-');
    const run = await cli(['list', '--dst', `file://${dir}/typo`, '--json']);
    const object = failedWith(run);
    expect(object).to.deep.equal({ root: `file://${dir}/typo`, error: `file://${dir}/typo does not exist: check --dst` });
  });

  // Only parseArgs' own errors here: in-process, the commands' UsageError is another class than
  // main's (tsx loads dynamically imported modules anew); the real binary: cli-backup.test.ts.
  it('usage errors (exit 2) print nothing on stdout, with --json too', async () => {
    for (const args of [
      ['list', '--dst', 'file:///tmp/a', '--json', '--bogus'],
      ['backup', '--kind', 'metrics', '--url', 'http://127.0.0.1:9', '--data-dir', '/nonexistent', '--dst', 'file:///tmp/a', '--json', '--name'],
    ]) {
      const run = await cli(args);
      expect(run.code, args.join(' ')).to.equal(2);
      expect(run.stdout).to.equal('');
      expect(run.stderr).to.match(/^velero-plugin-victoria \w+: /);
    }
  });

  describe('restore from a plan', () => {
    const startServer = loopbackServerPerTest();

    it('a plan that is gone prints the data directory, verified false and the error, never the URL', async () => {
      const server = await startServer((_req, res) => {
        res.writeHead(404, { 'content-type': 'application/xml' }).end('<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>');
      });
      const url = `${server.url}/bucket/plans/r1.json?X-Amz-Credential=AKIA&X-Amz-Signature=deadbeefcafe`;
      const dataDir = join(tmp('cli-json-'), 'data');
      const run = await cli(['restore', '--plan-url', url, '--plan-sha256', 'a'.repeat(64), '--data-dir', dataDir, '--json']);
      const object = failedWith(run);
      expect(object).to.deep.equal({ dataDir, verified: false, error: object.error });
      expect(object.error).to.match(/^get the restore plan: the object does not exist \(HTTP 404 NoSuchKey/);
      expect(run.stdout + run.error!.message).not.to.include('deadbeefcafe').and.not.to.include('/bucket/plans');
    });
  });
});
