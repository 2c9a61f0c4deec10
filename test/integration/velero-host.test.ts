/**
 * The built executable under a real go-plugin host (Debian's hashicorp/go-plugin, launched the way
 * Velero launches plugins): handshake, discovery, relaunch by `command`, every action RPC including
 * malformed items, stderr rules, Shutdown. And proof that the harness catches what crashes Velero.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { paths, requireComponents, ROOT } from '../support/components.js';
import { failedChecks, runVeleroHost } from '../support/velero-host.js';

const VELERO_SERVER_FLAGS = [
  '--features=EnableCSI,EnableAPIGroupVersions',
  '--uploader-type=kopia',
  '--default-volumes-to-fs-backup=false',
  '--item-block-worker-count=1',
  '--log-level=debug', // so that the debug lines are produced and checked too
  '--some-future-flag',
  'value',
];

describe('Velero host harness against the single executable', function () {
  before(function () {
    requireComponents(this, paths.plugin, paths.veleroHost, paths.goAnchor, paths.node);
  });

  // The real actions need the API server (none here: the end-to-end tests give them the stand-in),
  // so on the harness's generic input they answer with an error message, which the harness checks
  // for being a proper gRPC error; the workload check applies to Deployments, not only pods.
  const REAL_ACTIONS = ['-allow-execute-error', '-expect-noop=false', '-expect-resource='];

  it('passes every check of the go-plugin host', () => {
    const run = runVeleroHost(paths.plugin, REAL_ACTIONS, VELERO_SERVER_FLAGS);
    expect(failedChecks(run.report), run.output).to.deep.equal([]);
    expect(run.status, run.output).to.equal(0);
    const names = run.report.checks.map((c) => c.name);
    for (const required of ['handshake', 'relaunch', 'health', 'bia-execute', 'ria-execute', 'dia-execute', 'bia-progress', 'shutdown', 'stderr-lines']) {
      expect(names).to.include(required);
    }
    expect(run.report.plugins.map((p) => `${p.kind} ${p.name}`)).to.deep.equal([
      'BackupItemActionV2 velero-plugin-victoria.io/pod-backup',
      'BackupItemActionV2 velero-plugin-victoria.io/workload-check',
      'RestoreItemActionV2 velero-plugin-victoria.io/pod-restore',
      'RestoreItemActionV2 velero-plugin-victoria.io/workload-restore',
      'DeleteItemAction velero-plugin-victoria.io/pod-delete',
    ]);
    // The debug lines of the pass-through actions were emitted and found valid.
    expect(run.report.checks.find((c) => c.name === 'stderr-lines')?.message).to.match(/^[1-9]\d* line\(s\)/);
  });

  it('passes with no flags at all (Velero forwards only what its server got)', () => {
    const run = runVeleroHost(paths.plugin, REAL_ACTIONS, ['--features=']);
    expect(failedChecks(run.report), run.output).to.deep.equal([]);
  });

  it('passes with arguments that are not flags, and -h or --version among them', () => {
    // `velero --features=X server …` has Velero pass `server …` (its os.Args[2:]); a -h there
    // must not print the usage where Velero reads the handshake.
    const run = runVeleroHost(paths.plugin, REAL_ACTIONS, ['server', '--uploader-type=kopia', '-h', '--help', '--version']);
    expect(failedChecks(run.report), run.output).to.deep.equal([]);
    expect(run.status, run.output).to.equal(0);
  });

  it('the harness passes the Go anchor plugin built with the same toolchain', () => {
    const run = runVeleroHost(paths.goAnchor);
    expect(failedChecks(run.report), run.output).to.deep.equal([]);
  });

  describe('catches what crashes Velero', () => {
    function brokenPlugin(mode: 'log' | 'progress') {
      const dir = mkdtempSync(join(tmpdir(), 'broken-plugin-'));
      const wrapper = join(dir, 'broken-plugin');
      writeFileSync(wrapper, `#!/bin/sh\ncd '${ROOT}'\nexec '${paths.node}' --import tsx test/fixtures/broken-plugin.ts "$@"\n`);
      chmodSync(wrapper, 0o755);
      return runVeleroHost(wrapper, ['-expect-noop=true'], [], {
        env: { ...process.env, BROKEN: mode, FIXTURE_COMMAND: wrapper },
      });
    }

    it('a log line with a non-string name', () => {
      const run = brokenPlugin('log');
      expect(run.status).to.equal(1);
      expect(failedChecks(run.report).join('\n'), run.output).to.match(/stderr-lines: .*"name" is a number/);
    });

    it('a Progress reply without progress', () => {
      const run = brokenPlugin('progress');
      expect(run.status).to.equal(1);
      expect(failedChecks(run.report).join('\n'), run.output).to.match(/bia-progress: .*no progress/);
    });
  });

  it('started by hand (no VELERO_PLUGIN), prints a human message and exits 1 with stdout empty', () => {
    const env = { ...process.env };
    delete env.VELERO_PLUGIN;
    const res = spawnSync(paths.plugin, [], { env, encoding: 'utf8' });
    expect(res.status).to.equal(1);
    expect(res.stdout).to.equal('');
    expect(res.stderr).to.match(/this is a Velero plugin; Velero starts it itself/);
  });

  it('started by Velero but unable to serve (no socket directory), says why in one JSON error line, which Velero shows, and exits 1', () => {
    const env = { ...process.env, VELERO_PLUGIN: 'hello', PLUGIN_UNIX_SOCKET_DIR: '/nonexistent/socket-dir' };
    const res = spawnSync(paths.plugin, [], { env, encoding: 'utf8' });
    expect(res.status).to.equal(1);
    expect(res.stdout, 'no handshake').to.equal('');
    const lines = res.stderr.trim().split('\n');
    expect(lines, res.stderr).to.have.length(1);
    const line = JSON.parse(lines[0]!) as Record<string, string>;
    expect(line['@level']).to.equal('error');
    expect(line['@message']).to.match(/^velero-plugin-victoria could not start: .*\/nonexistent\/socket-dir/);
  });
});
