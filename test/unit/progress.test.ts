import { expect } from 'chai';
import { formatBytes } from '../../src/engine/progress.js';

describe('progress: bytes for people', () => {
  it('uses B, KiB, MiB and GiB, and whole bytes for fractional rates', () => {
    expect(formatBytes(0)).to.equal('0 B');
    expect(formatBytes(121.89054726368158)).to.equal('122 B');
    expect(formatBytes(1536)).to.equal('1.5 KiB');
    expect(formatBytes(12.3 * 1024 * 1024)).to.equal('12.3 MiB');
    expect(formatBytes(1.234 * 1024 ** 3)).to.equal('1.23 GiB');
  });
});
