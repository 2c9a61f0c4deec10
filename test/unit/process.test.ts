import { expect } from 'chai';
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
});
