// Bounded concurrency for the CLI: at most `limit` tasks in flight, pulling
// from an iterator, so 100,000 files never become 100,000 promises.

/** Runs `fn` over `items` with at most `limit` calls in flight; stops pulling new items once `signal` aborts. */
export async function forEachBounded<T>(
  items: Iterable<T> | AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const it = Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : (items as Iterable<T>)[Symbol.iterator]();
  let failure: unknown;
  const worker = async () => {
    for (;;) {
      if (signal?.aborted || failure !== undefined) return;
      const next = await it.next();
      if (next.done) return;
      try {
        await fn(next.value);
      } catch (err) {
        failure ??= err;
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
  if (failure !== undefined) throw failure;
}
