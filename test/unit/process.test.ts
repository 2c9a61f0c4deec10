import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureStrayOutput, checkLaunchedByVelero, NotLaunchedByVelero, parseVeleroFlags } from '../../src/velero/process.js';
import type { Logger } from '../../src/velero/log.js';

describe('plugin process launch', () => {
  it('accepts and ignores every Velero server flag', () => {
    const flags = parseVeleroFlags([
      '--features=EnableCSI,EnableAPIGroupVersions',
      '--uploader-type=kopia',
      '--default-volumes-to-fs-backup=true',
      '--log-level', 'debug',
      '--unknown-flag', 'value',
      '--bool-flag',
    ]);
    expect(flags).to.deep.equal({ logLevel: 'debug' });
    expect(parseVeleroFlags([])).to.deep.equal({ logLevel: undefined });
  });

  it('serves only behind the magic cookie, with a message for people', () => {
    expect(() => checkLaunchedByVelero({})).to.throw(NotLaunchedByVelero, /Velero starts it itself/);
    expect(() => checkLaunchedByVelero({ VELERO_PLUGIN: 'bye' })).to.throw(NotLaunchedByVelero);
    expect(() => checkLaunchedByVelero({ VELERO_PLUGIN: 'hello' })).not.to.throw();
    expect(() => checkLaunchedByVelero({ VELERO_PLUGIN: 'hello', PLUGIN_PROTOCOL_VERSIONS: '2' })).not.to.throw();
    expect(() => checkLaunchedByVelero({ VELERO_PLUGIN: 'hello', PLUGIN_PROTOCOL_VERSIONS: '3,4' })).to.throw(/speaks version 2/);
  });

  it("takes libraries' console output in, their warnings and errors at info (not counted against the backup), and Node's warnings at debug", () => {
    const saved = { log: console.log, info: console.info, debug: console.debug, warn: console.warn, error: console.error };
    const warningListeners = process.listeners('warning');
    const lines: Array<[string, string]> = [];
    const log = Object.fromEntries(['debug', 'info', 'warn', 'error'].map((level) => [level, (m: string) => lines.push([level, m])])) as unknown as Logger;
    try {
      captureStrayOutput(log);
      console.warn('@smithy/node-http-handler:WARN - socket usage at capacity=32 and 96 additional requests are enqueued.');
      console.error('a library error');
      console.log('chatter');
      process.emit('warning', Object.assign(new Error('old API'), { name: 'DeprecationWarning' }));
    } finally {
      Object.assign(console, saved);
      process.removeAllListeners('warning');
      for (const l of warningListeners) process.on('warning', l);
    }
    expect(lines).to.deep.equal([
      ['info', '@smithy/node-http-handler:WARN - socket usage at capacity=32 and 96 additional requests are enqueued.'],
      ['info', 'a library error'],
      ['debug', 'chatter'],
      ['debug', 'node: DeprecationWarning: old API'],
    ]);
  });

  it('on SIGTERM, runs beforeExit (the open uploads\' aborts) before exiting 0, for at most 1.5 s (Shutdown takes the same path; the Go host checks it exits within 2 s)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vpv-exit-'));
    // A plugin process whose beforeExit records that it ran, and takes `ms` (forever: -1).
    const run = async (ms: number): Promise<{ code: number | null; ran: boolean; tookMs: number }> => {
      const marker = join(dir, `ran-${ms}`);
      const script = `
        import { writeFileSync } from 'node:fs';
        import { allActions } from './src/actions/index.ts';
        import { runPluginProcess } from './src/velero/process.ts';
        const beforeExit = () => new Promise((resolve) => { writeFileSync(${JSON.stringify(marker)}, ''); if (${ms} >= 0) setTimeout(resolve, ${ms}); });
        await runPluginProcess({ args: [], env: { VELERO_PLUGIN: 'hello' }, command: 'x', actions: allActions(), beforeExit });`;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { ...process.env, PLUGIN_UNIX_SOCKET_DIR: dir }, stdio: ['ignore', 'pipe', 'inherit'] });
      // The handshake line says it serves.
      await once(child.stdout, 'data');
      const sent = Date.now();
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      return { code, ran: existsSync(marker), tookMs: Date.now() - sent };
    };
    try {
      const quick = await run(100);
      expect(quick).to.include({ code: 0, ran: true });
      expect(quick.tookMs).to.be.below(1400);
      const stuck = await run(-1);
      expect(stuck).to.include({ code: 0, ran: true });
      // Waited for beforeExit up to the 1.5 s grace, not less; the upper bound leaves a busy machine a
      // second beyond the grace for the signal and the exit, and refuses a grace of 2.5 s or more.
      expect(stuck.tookMs).to.be.within(1400, 2500);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a crash logs one error line with the cause in error (which describe shows beside the message) and the stack apart, and exits 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vpv-crash-'));
    const script = `
      import { allActions } from './src/actions/index.ts';
      import { runPluginProcess } from './src/velero/process.ts';
      await runPluginProcess({ args: [], env: { VELERO_PLUGIN: 'hello' }, command: 'x', actions: allActions() });
      setTimeout(() => { throw new TypeError('cannot read properties of undefined (reading "spec")'); }, 10);`;
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { ...process.env, PLUGIN_UNIX_SOCKET_DIR: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code).to.equal(1);
      const lines = stderr.trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
      const errors = lines.filter((l) => l['@level'] === 'error');
      expect(errors, stderr).to.have.length(1);
      expect(errors[0]!['@message']).to.equal('velero-plugin-victoria crashed');
      expect(errors[0]!.error).to.equal('cannot read properties of undefined (reading "spec")');
      expect(errors[0]!.stack).to.match(/^TypeError: cannot read properties of undefined \(reading "spec"\)\n\s+at /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
