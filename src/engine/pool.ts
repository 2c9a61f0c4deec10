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
