/** The README's main command works as written: the demo backs up, restores and compares counts. */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
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
});
