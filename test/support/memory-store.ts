/** An in-memory ObjectStore for engine unit tests, with hooks to damage or fail operations. */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { StoreError } from '../../src/store/errors.js';
import type { ByteRange, ObjectInfo, ObjectStore, PutBody } from '../../src/store/types.js';

/** As S3 gives a single-part object's ETag: the MD5 of its bytes. */
function etagOf(body: Buffer): string {
  return createHash('md5').update(body).digest('hex');
}

export class MemoryStore implements ObjectStore {
  readonly location = 'memory://test';
  readonly objects = new Map<string, Buffer>();
  readonly calls = { put: 0, copy: 0, get: 0 };
  /** Throw from put() for keys matching this. */
  failPut?: (key: string) => boolean;

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    for (const key of [...this.objects.keys()].sort()) if (key.startsWith(prefix)) yield { key, size: this.objects.get(key)!.length, etag: etagOf(this.objects.get(key)!) };
  }

  async listDirectories(prefix: string): Promise<string[]> {
    const dirs = new Set<string>();
    for (const key of this.objects.keys()) {
      if (!key.startsWith(prefix)) continue;
      const rest = key.slice(prefix.length);
      const slash = rest.indexOf('/');
      if (slash > 0) dirs.add(prefix + rest.slice(0, slash + 1));
    }
    return [...dirs].sort();
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const body = this.objects.get(key);
    return body ? { key, size: body.length } : undefined;
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    this.calls.get++;
    const body = this.objects.get(key);
    if (!body) throw new StoreError('NotFound', `get ${this.location}/${key}: the object does not exist`, { operation: 'get', target: `${this.location}/${key}` });
    return Readable.from([range ? body.subarray(range.start, range.end + 1) : body]);
  }

  async put(key: string, body: PutBody, size: number): Promise<void> {
    this.calls.put++;
    const chunks: Buffer[] = [];
    if (Buffer.isBuffer(body)) chunks.push(body);
    // Copied: an iterable body may reuse a chunk's memory once the next one is asked for.
    else for await (const c of body) chunks.push(Buffer.from(c as Buffer));
    if (this.failPut?.(key)) throw new Error(`injected failure writing ${key}`);
    const data = Buffer.concat(chunks);
    if (data.length !== size) throw new Error(`put ${key}: got ${data.length} bytes, announced ${size}`);
    this.objects.set(key, data);
  }

  async copy(fromKey: string, toKey: string, _size?: number, ifMatch?: string): Promise<void> {
    this.calls.copy++;
    const body = this.objects.get(fromKey);
    if (!body) throw new Error(`copy: no such object ${fromKey}`);
    if (ifMatch !== undefined && etagOf(body) !== ifMatch) {
      throw new StoreError('Changed', `copy ${this.location}/${fromKey}: the object was replaced (PreconditionFailed)`, { operation: 'copy', target: `${this.location}/${fromKey}` });
    }
    this.objects.set(toKey, Buffer.from(body));
  }

  async delete(keys: string[]): Promise<void> {
    for (const key of keys) this.objects.delete(key);
  }
}
