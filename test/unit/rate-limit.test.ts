import { expect } from 'chai';
import { parseBytesPerSecond, RateLimiter } from '../../src/engine/rate-limit.js';

describe('rate limit', () => {
  it("parses byte rates as vmbackup's -maxBytesPerSecond does, and says what it takes otherwise", () => {
    expect(parseBytesPerSecond('0')).to.equal(0);
    expect(parseBytesPerSecond('52428800')).to.equal(52_428_800);
    expect(parseBytesPerSecond('50MiB')).to.equal(50 * 2 ** 20);
    expect(parseBytesPerSecond(' 50MB ')).to.equal(50_000_000);
    expect(parseBytesPerSecond('1.5GiB')).to.equal(1.5 * 2 ** 30);
    expect(parseBytesPerSecond('64KiB')).to.equal(65_536);
    expect(parseBytesPerSecond('1TB')).to.equal(1e12);
    for (const bad of ['', 'fast', '-5', '50 mb', '50M', '50Mi', '1e6', '0x10']) {
      expect(parseBytesPerSecond(bad), bad).to.match(/^a number of bytes per second such as .*50MiB/);
    }
    expect(parseBytesPerSecond('1000')).to.equal('0 (no limit) or at least 64KiB per second');
    expect(() => new RateLimiter(1000)).to.throw(/at least 65536 bytes per second/);
  });

  it('holds concurrent takers together to the rate, after a burst of at most 50 ms', async () => {
    const limiter = new RateLimiter(1024 * 1024);
    const started = performance.now();
    // Four takers, 640 KiB in all at 1 MiB/s: 625 ms, less the burst.
    await Promise.all(
      [0, 1, 2, 3].map(async () => {
        for (let i = 0; i < 5; i++) await limiter.take(32 * 1024);
      }),
    );
    const ms = performance.now() - started;
    // Upper bounds loose: a loaded two-core machine delays timers; the lower ones catch a broken limiter.
    expect(ms).to.be.within(560, 2000);
    // Idle time earns no more than the burst: the next 256 KiB take their 250 ms again.
    await new Promise((r) => setTimeout(r, 300));
    const again = performance.now();
    for (let i = 0; i < 4; i++) await limiter.take(64 * 1024);
    expect(performance.now() - again).to.be.within(190, 1200);
  });

  it('hands a chunk on in pieces of at most 64 KiB that add up to it', async () => {
    const chunk = Buffer.alloc(200 * 1024, 3);
    const pieces: Buffer[] = [];
    for await (const piece of new RateLimiter(64 * 1024 * 1024).pace(chunk)) pieces.push(piece);
    expect(pieces.map((p) => p.length)).to.deep.equal([65_536, 65_536, 65_536, 8_192]);
    expect(Buffer.concat(pieces).equals(chunk)).to.equal(true);
  });
});
