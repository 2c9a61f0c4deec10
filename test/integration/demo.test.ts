/** The README's main command works as written: the demo backs up, restores and compares counts. */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { paths, requireComponents, CACHE } from '../support/components.js';

describe('demo', function () {
  it('restores VictoriaMetrics and VictoriaLogs with the same counts', async function () {
    requireComponents(this, paths.plugin, paths.vm145, paths.victoriaLogsServer);
    const child = spawn(paths.plugin, ['demo', '--components', CACHE], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const [code] = await once(child, 'close');
    expect(code, out).to.equal(0);
    expect(out).to.match(/\| metrics \| samples \| 36000 \| 36000 \| same \|/);
    expect(out).to.match(/\| logs \| log lines \| 6000 \| 6000 \| same \|/);
    expect(out).to.contain('demo passed');
  });

  for (const [signal, code, after] of [
    ['SIGTERM', 143, 'VictoriaMetrics 1.145: started at'],
    ['SIGINT', 130, '  backup  '],
  ] as const) {
    it(`${signal} stops its databases and removes its work directory before it exits ${code}`, async function () {
      requireComponents(this, paths.plugin, paths.vm145, paths.victoriaLogsServer);
      const demoDirs = () => readdirSync(tmpdir()).filter((e) => e.startsWith('victoria-demo-'));
      const before = new Set(demoDirs());
      const child = spawn(paths.plugin, ['demo', '--components', CACHE], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const closed = once(child, 'close');
      const url = await new Promise<string>((resolve) =>
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const started = /started at (http:\/\/[^,\s]+)/.exec(out);
          if (started && out.includes(after)) resolve(started[1]!);
        }),
      );
      child.kill(signal);
      const [exit] = await closed;
      expect(exit, out).to.equal(code);
      expect(demoDirs().filter((d) => !before.has(d)), 'no work directory left').to.deep.equal([]);
      const answer = await fetch(`${url}/health`).then(() => 'answers', () => 'gone');
      expect(answer, 'the demo\'s VictoriaMetrics is stopped').to.equal('gone');
    });
  }
});
