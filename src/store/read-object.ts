import type { ChunkSink, ObjectStore } from './types.js';

/** An object's bytes into `sink`: through the store's readInto where it has one, else its get() stream. */
export async function readObject(store: ObjectStore, key: string, size: number, sink: ChunkSink): Promise<void> {
  if (store.readInto) return store.readInto(key, size, sink);
  for await (const c of await store.get(key)) await sink(Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array));
}
