/** Small helpers shared by the object-store tests. */
import { expect } from 'chai';
import type { Readable } from 'node:stream';
import { StoreError } from '../../src/store/errors.js';

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** The StoreError a promise rejects with; fails the test if it resolves or throws anything else. */
export async function rejection(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(StoreError);
    return err as StoreError;
  }
  throw new Error('expected a rejection');
}
