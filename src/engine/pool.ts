/** Run `worker` over `items` with at most `concurrency` at once; the first failure stops the rest. */
export async function forEachLimit<T>(items: AsyncIterable<T> | Iterable<T>, concurrency: number, worker: (item: T) => Promise<void>): Promise<void> {
  const iterator = Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : (items as Iterable<T>)[Symbol.iterator]();
  let failed: unknown;
  let hasFailed = false;
  const run = async (): Promise<void> => {
    while (!hasFailed) {
      const next = await iterator.next();
      if (next.done) return;
      try {
        await worker(next.value);
      } catch (err) {
        if (!hasFailed) {
          hasFailed = true;
          failed = err;
        }
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, run));
  if (hasFailed) {
    await iterator.return?.();
    throw failed;
  }
}

/** A counting semaphore; waiters are served in order. */
export class Semaphore {
  private readonly waiting: Array<() => void> = [];

  constructor(private available: number) {}

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
export async function forEachFromBothEnds<T>(items: readonly T[], front: number, back: number, worker: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let last = items.length - 1;
  let failed: { error: unknown } | undefined;
  const run = async (fromFront: boolean): Promise<void> => {
    while (!failed && next <= last) {
      const item = fromFront ? items[next++]! : items[last--]!;
      try {
        await worker(item);
      } catch (error) {
        failed ??= { error };
        return;
      }
    }
  };
  await Promise.all([...Array.from({ length: Math.max(1, front) }, () => run(true)), ...Array.from({ length: Math.max(0, back) }, () => run(false))]);
  if (failed) throw failed.error;
}
