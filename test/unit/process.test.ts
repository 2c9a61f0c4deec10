import { expect } from 'chai';
import { checkLaunchedByVelero, NotLaunchedByVelero, parseVeleroFlags } from '../../src/velero/process.js';

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
});
