import { expect } from 'chai';
import { forEachFromBothEnds, forEachLimit, Semaphore } from '../../src/store/pool.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('forEachFromBothEnds', () => {
  it('runs every item once, front workers from the largest and back workers from the smallest, within the bounds', async () => {
    const items = Array.from({ length: 50 }, (_, i) => 50 - i);
    const started: number[] = [];
    let running = 0;
    let peak = 0;
    await forEachFromBothEnds(items, 2, 3, async (n) => {
      started.push(n);
      peak = Math.max(peak, ++running);
      for (let i = 0; i < (n > 25 ? 5 : 1); i++) await tick();
      running--;
    });
    expect([...started].sort((a, b) => a - b)).to.deep.equal([...items].sort((a, b) => a - b));
    expect(peak).to.equal(5);
    expect(started.slice(0, 5)).to.deep.equal([50, 49, 1, 2, 3]);
  });

  it('stops taking items after the first failure and throws it', async () => {
    const seen: number[] = [];
    const err = await forEachFromBothEnds([5, 4, 3, 2, 1], 1, 1, async (n) => {
      seen.push(n);
      if (n === 1) throw new Error('one failed');
      await tick();
    }).catch((e: Error) => e);
    expect((err as Error).message).to.equal('one failed');
    expect(seen).to.deep.equal([5, 1]);
  });

  it('tells the workers in flight of the first failure (its reason) and waits for them to end', async () => {
    const reasons: unknown[] = [];
    let ended = 0;
    const err = await forEachFromBothEnds([3, 2, 1], 2, 1, async (n, stop) => {
      if (n === 1) throw new Error('one failed');
      // A transfer that checks between chunks: it ends at the next one once told.
      while (!stop.aborted) await tick();
      reasons.push(stop.reason);
      ended++;
    }).catch((e: Error) => e);
    expect((err as Error).message).to.equal('one failed');
    expect(ended).to.equal(2);
    expect(reasons).to.deep.equal([err, err]);
  });

  it('handles an empty list and a single front worker', async () => {
    await forEachFromBothEnds([], 4, 8, async () => expect.fail('no items'));
    const seen: number[] = [];
    await forEachFromBothEnds([3, 2, 1], 1, 0, async (n) => void seen.push(n));
    expect(seen).to.deep.equal([3, 2, 1]);
  });
});

describe('forEachLimit', () => {
  it('a source that fails mid-way is thrown only after the items in flight have ended', async () => {
    let inFlight = 0;
    let ended = 0;
    async function* source() {
      yield 1;
      yield 2;
      throw new Error('the stream broke');
    }
    const err = await forEachLimit(source(), 3, async () => {
      inFlight++;
      await new Promise((resolve) => setTimeout(resolve, 100));
      inFlight--;
      ended++;
    }).catch((e: Error) => e);
    expect((err as Error).message).to.equal('the stream broke');
    expect({ inFlight, ended }).to.deep.equal({ inFlight: 0, ended: 2 });
  });
});

describe('forEachLimit after a failure', () => {
  it('an item taken from an asynchronous source while another failed arrives with the failure signalled', async () => {
    async function* slow() {
      for (let i = 0; i < 3; i++) {
        await new Promise((resolve) => setTimeout(resolve, 30));
        yield i;
      }
    }
    const started: Array<[number, boolean]> = [];
    const err = await forEachLimit(slow(), 2, async (n, stop) => {
      started.push([n, stop.aborted]);
      stop.throwIfAborted();
      if (n === 0) throw new Error('item 0 failed');
    }).catch((e: Error) => e);
    expect((err as Error).message).to.equal('item 0 failed');
    expect(started).to.deep.equal([
      [0, false],
      [1, true],
    ]);
  });
});

describe('Semaphore', () => {
  it('tryAcquire takes a free unit at once and never one a waiter is owed; waiters are served in order', async () => {
    const s = new Semaphore(1);
    expect(s.tryAcquire()).to.equal(true);
    expect(s.tryAcquire()).to.equal(false);
    const served: string[] = [];
    const a = s.acquire().then(() => served.push('a'));
    const b = s.acquire().then(() => served.push('b'));
    s.release(); // handed to a, not made free
    expect(s.tryAcquire()).to.equal(false);
    await a;
    s.release();
    await b;
    expect(served).to.deep.equal(['a', 'b']);
    s.release();
    expect(s.tryAcquire()).to.equal(true);
  });
});
