/**
 * Bounded concurrency for transfers, shared by the stores and the engine (it lives in store/,
 * which the engine may import, so that both can use it).
 */
type Take<T> = () => IteratorResult<T> | Promise<IteratorResult<T>>;

/**
 * A worker of the functions below. `stop` is aborted (with the first failure as its reason) as
 * soon as any item fails: a worker checks it between chunks, so that its transfer in flight ends
 * there instead of running to its end for nothing (a download of several GiB before a restore can
 * report a damaged file), and before it starts an item: one taken from an asynchronous source
 * while another failed arrives with `stop` aborted (and may need releasing, as a tar entry does).
 */
export type Worker<T> = (item: T, stop: AbortSignal) => Promise<void>;

/**
 * One worker per `takes` entry, each taking items with its function and running `worker` on them
 * until its source is done or any worker failed; the first failure, if any.
 */
async function runWorkers<T>(takes: Array<Take<T>>, worker: Worker<T>): Promise<{ error: unknown } | undefined> {
  let failed: { error: unknown } | undefined;
  const stop = new AbortController();
  const run = async (take: Take<T>): Promise<void> => {
    while (!failed) {
      // A source that fails (a tar stream cut off) stops this worker like a failed item, so the
      // caller hears of it only once the other workers' transfers have ended: its clean-up must
      // not race uploads still in flight. `stop` makes them end sooner, not the wait shorter.
      try {
        const next = await take();
        if (next.done) return;
        await worker(next.value, stop.signal);
      } catch (error) {
        if (!failed) {
          failed = { error };
          stop.abort(error);
        }
        return;
      }
    }
  };
  await Promise.all(takes.map(run));
  return failed;
}

/** Run `worker` over `items` with at most `concurrency` at once; the first failure stops the rest. */
export async function forEachLimit<T>(items: AsyncIterable<T> | Iterable<T>, concurrency: number, worker: Worker<T>): Promise<void> {
  const iterator = Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : (items as Iterable<T>)[Symbol.iterator]();
  const failed = await runWorkers(Array.from({ length: Math.max(1, concurrency) }, () => () => iterator.next()), worker);
  if (failed) {
    await iterator.return?.();
    throw failed.error;
  }
}

/** A counting semaphore; waiters are served in order. */
export class Semaphore {
  private readonly waiting: Array<() => void> = [];

  constructor(private available: number) {}

  /** Takes a unit if one is free at once. */
  tryAcquire(): boolean {
    if (this.available === 0) return false;
    this.available--;
    return true;
  }

  async acquire(): Promise<void> {
    if (this.available > 0) {
      this.available--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.available++;
  }
}

/**
 * Run `worker` over `items`, ordered largest first: `front` workers take from the front and `back`
 * workers from the back until they meet; the first failure stops the rest. For transfers of files
 * of very different sizes: the large ones are bound by bandwidth and need few at a time, the small
 * ones by per-request latency and need many, and both kinds in flight together keep the
 * connection and the server busy (largest-first alone leaves hundreds of small files to the end,
 * where their latency shows).
 */
export async function forEachFromBothEnds<T>(items: readonly T[], front: number, back: number, worker: Worker<T>): Promise<void> {
  let next = 0;
  let last = items.length - 1;
  const done: IteratorResult<T> = { done: true, value: undefined };
  const fromFront: Take<T> = () => (next <= last ? { done: false, value: items[next++]! } : done);
  const fromBack: Take<T> = () => (next <= last ? { done: false, value: items[last--]! } : done);
  const failed = await runWorkers([...Array.from({ length: Math.max(1, front) }, () => fromFront), ...Array.from({ length: Math.max(0, back) }, () => fromBack)], worker);
  if (failed) throw failed.error;
}
