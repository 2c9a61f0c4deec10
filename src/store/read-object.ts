import type { ChunkSink, ObjectStore } from './types.js';

/** An object's bytes into `sink`: through the store's readInto where it has one, else its get() stream. */
export async function readObject(store: ObjectStore, key: string, size: number, sink: ChunkSink): Promise<void> {
  if (store.readInto) return store.readInto(key, size, sink);
  for await (const c of await store.get(key)) await sink(Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array));
}

/** A small object (a marker, a manifest) whole, in memory. */
export async function readWholeObject(store: ObjectStore, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.get(key)) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}
