import type { ChunkSink, ObjectStore } from './types.js';

/** An object's bytes into `sink`: through the store's readInto where it has one, else its get() stream. */
export async function readObject(store: ObjectStore, key: string, size: number, sink: ChunkSink): Promise<void> {
  if (store.readInto) return store.readInto(key, size, sink);
  for await (const c of await store.get(key)) await sink(Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array));
}

/** An object larger than its reader allows: not what the reader expects there. */
export class ObjectTooLargeError extends Error {}

/**
 * A small object (a marker, a manifest) whole, in memory; at most `maxBytes`, so that an object of
 * that name which is something else (written by anyone who may write the bucket) cannot take the
 * process's memory: the read stops there.
 */
export async function readWholeObject(store: ObjectStore, key: string, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  const body = await store.get(key);
  for await (const chunk of body) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    size += b.length;
    if (size > maxBytes) {
      body.destroy();
      throw new ObjectTooLargeError(`${store.location}/${key} is larger than the ${maxBytes} bytes such an object can have: it is not what this tool wrote there`);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}
