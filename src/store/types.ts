/**
 * The one small interface the engine writes backups through (README.md, Development: Layout).
 * Implementations: S3 (s3.ts) and file:// (file.ts). Keys are relative to the root the store was
 * opened on (`s3://bucket/prefix` → keys under `prefix/`), always with `/` separators and no
 * leading `/`.
 */
import type { Readable } from 'node:stream';

export interface ObjectInfo {
  /** Relative to the store root. */
  key: string;
  size: number;
  lastModified?: Date;
  /**
   * What the store calls this version of the object's bytes, without quotes (S3's ETag), where it
   * has one: a listing that gives another ETag for the key than an earlier one did means the object
   * was replaced, even at the same size. file:// has none.
   */
  etag?: string;
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive (HTTP Range semantics). */
  end: number;
}

/** What put() takes: the bytes at once, or in chunks (see put()). */
export type PutBody = Buffer | Readable | AsyncIterable<Buffer>;

/**
 * Receives an object's bytes (ObjectStore.readInto). A chunk may be a view of a buffer that is
 * reused: it is valid only during the call, or until the promise the sink returns settles (the
 * download waits for it).
 */
export type ChunkSink = (chunk: Buffer) => void | Promise<void>;

export interface ObjectStore {
  /** Where this store points, for messages; never contains credentials. */
  readonly location: string;
  /** Every object whose key starts with `prefix`, in key order, following pagination. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /**
   * The "sub-directories" directly under `prefix` (which ends with `/` or is empty), each returned
   * with its trailing `/`, like S3's CommonPrefixes with delimiter `/`. Finding the backups of a
   * workload must not list every part of every backup.
   */
  listDirectories(prefix: string): Promise<string[]>;
  /** Object metadata, or undefined if it does not exist. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /**
   * The nearest folder above the root that holds `key`, as a location, else undefined: a backup
   * written inside another backup would become part of it. Best effort: credentials scoped to the
   * root may not read above it, and that must not stop a backup.
   */
  folderAbove?(key: string): Promise<string | undefined>;
  /** The object's bytes (or a range of them) as a stream. Fails with a clear error if missing. */
  get(key: string, range?: ByteRange): Promise<Readable>;
  /**
   * The whole object, of `size` bytes as far as the caller knows, into `sink`: the restore's bulk
   * path, for stores that can read without allocating per chunk (S3 and restore plans:
   * direct-get.ts). The caller counts the bytes it receives. Stores without it are read with get().
   */
  readInto?(key: string, size: number, sink: ChunkSink): Promise<void>;
  /**
   * Write an object. `size` is the exact byte count of `body`; streams larger than one part go up
   * as parallel multipart uploads with bounded memory. Writes are atomic: a reader sees the whole
   * object or none of it. A body that is an iterable may reuse a chunk's memory once the next chunk
   * is asked for: stores copy or write every chunk before they ask (engine/files.ts reads local
   * files so, without allocating per read).
   */
  put(key: string, body: PutBody, size: number): Promise<void>;
  /**
   * Server-side copy within the store (no bytes through this process where the backend allows).
   * With `ifMatch` (an ETag as list() gives it), a source that is no longer that version fails the
   * copy with code 'Changed' instead of being copied; stores without ETags ignore it.
   */
  copy(fromKey: string, toKey: string, size: number, ifMatch?: string): Promise<void>;
  /**
   * Abort the multipart uploads under way (S3), for a process about to exit on an interrupt; the
   * writes they belong to fail. Returns how many were open. Stores without such uploads lack it.
   */
  abortOpenUploads?(): Promise<number>;
  /**
   * This store with every request bound to `signal` (in place of any it had): once aborted,
   * requests in flight end and none start, so a deadline bounds the calls under way too. Shares
   * the store's connections. Stores whose calls are local (file://) lack it.
   */
  withSignal?(signal: AbortSignal): ObjectStore;
  /** Delete objects; missing keys are not an error. */
  delete(keys: string[]): Promise<void>;
}
