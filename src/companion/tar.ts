/**
 * `companion tar`: streams requested snapshot files as a POSIX tar (npm tar-stream) to stdout, for
 * the plugin to read over an exec stream. The request is the first stdin line; the rest of stdin is
 * ignored, because Kubernetes' v4 exec protocol cannot close stdin, except its end when the request
 * asks for that (`cancelOnStdinEnd`: the client has gone, client-stdin.ts).
 *
 * Memory stays bounded whatever the file sizes: a file is read in chunks only as fast as the
 * output drains (file → entry sink → pack → output, each step waiting for `drain`).
 *
 * A tar entry's size is fixed in its header before its bytes follow, so a file that changes size
 * while read cannot become a correct entry. Snapshot files are immutable hard links and never
 * should; if one does anyway, the stream fails: the last chunk is held back until the size is
 * checked again, so the broken entry is always short and no reader can take it for a whole file.
 */
import { realpath, stat } from 'node:fs/promises';
import { Socket } from 'node:net';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pack as tarPack, type Pack } from 'tar-stream';
import { checkInside, openInside } from '../engine/files.js';
import { isSkippedFile } from '../engine/layout.js';
import type { Snapshot } from '../victoria/types.js';
import type { CompanionConfig } from './config.js';
import { ClientStdin } from './client-stdin.js';
import { CompanionError, usageError } from './errors.js';
import { snapshotMissing, snapshotRoot } from './files.js';
import { parseTarRequest, ProtocolError, type TarRequest } from './protocol.js';
import { markInUse, requireRecord } from './state.js';

/** Read size: large enough for throughput, small enough that a few in flight cost little. */
const CHUNK_BYTES = 256 * 1024;
/** How often a running stream notes the set in use: far below any --max-snapshot-age worth setting. */
const IN_USE_INTERVAL_MS = 60_000;
/** Read buffers kept for reuse; backpressure keeps the number in flight at a few. */
const SPARE_BUFFERS = 8;
/** A request line longer than this is not a file list (a million paths fit comfortably). */
const MAX_REQUEST_BYTES = 256 * 1024 * 1024;
/**
 * Sizes from 8 GiB on do not fit the header's 11 octal digits. tar-stream then writes the size in
 * base-256 (GNU, also read by Go, bsdtar and tar-stream's extract); we add a pax `size` record too,
 * which is how POSIX readers find it.
 */
const OCTAL_SIZE_LIMIT = 8 ** 11;

type EntryHeader = Parameters<Pack['entry']>[0];

export interface TarResult {
  files: number;
  bytes: number;
}

/**
 * Reads the request, checks every path, then writes the tar to `output` (which it does not end).
 * A request with `cancelOnStdinEnd` stops the stream when `input` ends (client-stdin.ts).
 */
export async function writeTar(config: CompanionConfig, input: Readable, output: Writable): Promise<TarResult> {
  const client = new ClientStdin(input);
  try {
    const checked = await checkedRequest(config, client);
    return await streamTar(config, checked, output, client.signal);
  } finally {
    client.release();
  }
}

/** A request whose every path is in the recorded set. */
interface CheckedRequest {
  root: string;
  dataDir: string;
  files: string[];
}

async function checkedRequest(config: CompanionConfig, client: ClientStdin): Promise<CheckedRequest> {
  const record = await requireRecord(config.stateDir, config.kind);
  const request = await readRequest(client);
  // Without the request the rest of stdin means nothing: older plugins close it right after the line.
  if (request.cancelOnStdinEnd) client.cancelOnEnd();
  else client.release();
  const snapshot = record.snapshots.find((s) => s.relPathPrefix === request.tree);
  if (!snapshot) {
    const trees = record.snapshots.map((s) => JSON.stringify(s.relPathPrefix)).join(', ') || 'none';
    throw usageError(`tree ${JSON.stringify(request.tree)} is not in the recorded set (its trees: ${trees})`);
  }
  if (request.snapshot !== undefined && request.snapshot !== snapshot.name) {
    throw new CompanionError(
      `tree ${JSON.stringify(request.tree)} is snapshot ${snapshot.name} in the recorded set now, not ${request.snapshot} as \`companion files\` listed it: ` +
        'the set was replaced meanwhile (a pre hook of another backup ran, or serve expired it); back up again',
    );
  }
  const root = snapshotRoot(config, snapshot);
  await stat(root).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'ENOENT' ? snapshotMissing(snapshot, root) : new CompanionError(`cannot read ${root}: ${err.message}`);
  });
  // Every path is checked before the first byte goes out: a bad request produces no tar at all.
  const dataDir = await realpath(config.dataDir);
  for (const path of request.files) await checkRequested(root, path, snapshot, dataDir);
  return { root, dataDir, files: request.files };
}

/** The request line, parsed; a bad one is a usage error that says what the line must be. */
async function readRequest(client: ClientStdin): Promise<TarRequest> {
  const tooLong = () => usageError(`the request line on stdin is longer than ${MAX_REQUEST_BYTES} bytes: request fewer files per tar`);
  const line = await client.firstLine(MAX_REQUEST_BYTES, tooLong);
  if (line === undefined) throw usageError('stdin ended before the request line {"tree":"<prefix>","files":[…]}');
  try {
    return parseTarRequest(line);
  } catch (err) {
    throw err instanceof ProtocolError ? usageError(`${err.message}: the first stdin line must be {"tree":"<prefix>","files":["path",…]}`) : err;
  }
}

/** Writes the checked files as a tar; `signal` (the client gone) breaks the stream off. */
async function streamTar(config: CompanionConfig, { root, dataDir, files }: CheckedRequest, output: Writable, signal: AbortSignal): Promise<TarResult> {
  signal.throwIfAborted();
  const pack = tarPack();
  pack.on('error', () => undefined); // reported through `failure` below
  let failure: Error | undefined;
  const stop = (err: unknown): void => {
    failure ??= err instanceof Error ? err : new Error(String(err));
    pack.destroy(failure);
  };
  const fail = (err: unknown): never => {
    stop(err);
    throw failure;
  };
  const onAbort = (): void => stop(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  await markInUse(config.stateDir);
  // A stream may run for hours: serve must see the set in use while bytes go out (a stream that
  // stalls, its reader gone, stops renewing it).
  const sent = { bytes: 0 };
  let noted = 0;
  const inUse = setInterval(() => {
    if (sent.bytes === noted) return;
    noted = sent.bytes;
    void markInUse(config.stateDir);
  }, IN_USE_INTERVAL_MS);
  const buffers = new ReadBuffers(output instanceof Socket || output === process.stdout);
  const producing = packFiles(pack, root, dataDir, files, buffers).then((r) => {
    pack.finalize();
    return r;
  }, fail);
  const consuming = copyOut(pack, output, buffers, sent, signal).catch(fail);
  const [result] = await Promise.allSettled([producing, consuming]);
  clearInterval(inUse);
  signal.removeEventListener('abort', onAbort);
  if (failure) throw failure;
  return (result as PromiseFulfilledResult<TarResult>).value;
}

/** A path is in the recorded set when listSnapshotFiles would list it: a regular file, not skipped. */
async function checkRequested(root: string, path: string, s: Snapshot, dataDir: string): Promise<void> {
  const notInSet = (why: string): CompanionError =>
    usageError(`${JSON.stringify(path)} is not a file of tree ${JSON.stringify(s.relPathPrefix)} (snapshot ${s.name}) in the recorded set: ${why}; request only paths that \`companion files\` lists`);
  if (isSkippedFile(path)) throw notInSet('backups skip it');
  let st;
  try {
    st = await stat(join(root, path)); // follows symlinks, as the listing does
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw notInSet('no such file');
    throw new CompanionError(`cannot read ${join(root, path)}: ${(err as Error).message}`);
  }
  if (!st.isFile()) throw notInSet('not a regular file');
  // As the listing checks: nothing from outside the data directory (a planted link, a forged record).
  await checkInside(join(root, path), path, dataDir).catch((err: Error) => {
    throw usageError(err.message);
  });
}

/** The header of a file entry; large sizes get a pax record as well (OCTAL_SIZE_LIMIT). */
export function entryHeader(path: string, size: number, mtime: Date): EntryHeader {
  return { name: path, size, mode: 0o644, mtime, type: 'file', ...(size >= OCTAL_SIZE_LIMIT ? { pax: { size: String(size) } } : {}) };
}

/**
 * The buffers files are read into. A fresh buffer per read is external memory, which V8 answers
 * with a full garbage collection for about every 25 MiB: 20–25 of them per tar process of 640 MiB,
 * about 0.4 s of CPU. Tar-stream hands our chunks through unchanged, so a buffer can be read into
 * again once the output has written its chunk; that is only known for outputs that pass the bytes
 * to the OS before their write callback (sockets and pipes, as an exec's stdout is). Any other
 * output (a stream that queues the chunk itself) gets fresh buffers.
 */
class ReadBuffers {
  private readonly spare: Buffer[] = [];
  /**
   * Buffers handed out and not yet written, by their memory: recognises our chunks among
   * tar-stream's headers and padding, and gives each buffer back at most once.
   */
  private readonly inFlight = new Map<ArrayBufferLike, Buffer>();

  constructor(private readonly reuse: boolean) {}

  /** A buffer for a read of up to `want` bytes (at most CHUNK_BYTES are read at once). */
  take(want: number): Buffer {
    if (!this.reuse) return Buffer.allocUnsafe(Math.min(want, CHUNK_BYTES));
    const buf = this.spare.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES);
    this.inFlight.set(buf.buffer, buf);
    return buf;
  }

  /** A chunk the output has written (its write callback ran without error). */
  written(chunk: Buffer): void {
    const buf = this.inFlight.get(chunk.buffer);
    if (!buf) return;
    this.inFlight.delete(chunk.buffer);
    if (this.spare.length < SPARE_BUFFERS) this.spare.push(buf);
  }
}

async function packFiles(pack: Pack, root: string, dataDir: string, paths: readonly string[], buffers: ReadBuffers): Promise<TarResult> {
  let bytes = 0;
  for (const path of paths) bytes += await packFile(pack, root, dataDir, path, buffers);
  return { files: paths.length, bytes };
}

/** One entry: header with the size read now, then the bytes, the last chunk only after a re-check. */
async function packFile(pack: Pack, root: string, dataDir: string, path: string, buffers: ReadBuffers): Promise<number> {
  const abs = join(root, path);
  // checkRequested checked the path before the stream began; this checks the file actually opened.
  const fh = await openInside(abs, path, dataDir).catch((err: Error) => {
    throw usageError(err.message);
  });
  try {
    const st = await fh.stat();
    const size = st.size;
    let sink!: ReturnType<Pack['entry']>;
    const finished = new Promise<void>((resolve, reject) => {
      sink = pack.entry(entryHeader(path, size, st.mtime), (err) => (err ? reject(err) : resolve()));
    });
    // Failures arrive through the entry callback (and, for the whole stream, through writeTar's
    // `failure`); without listeners a destroyed sink would throw its error as uncaught.
    sink.on('error', () => undefined);
    finished.catch(() => undefined);
    let pos = 0;
    let held: Buffer | undefined;
    while (pos < size) {
      const buf = buffers.take(size - pos);
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      if (held && !sink.write(held)) await drained(sink);
      held = buf.subarray(0, bytesRead);
    }
    const now = (await fh.stat()).size;
    if (pos !== size || now !== size) {
      const err = new CompanionError(`${abs} changed size while it was read (${size} bytes when its tar header was written, ${now} now): a snapshot file must never change; the tar stream is broken off`);
      sink.destroy(err);
      throw err;
    }
    sink.end(held);
    await finished;
    return size;
  } finally {
    await fh.close();
  }
}

/**
 * Copies the tar to the output (counting into `sent` what it took), waiting whenever the output's
 * buffer is full. An output error (the reader went away: EPIPE) ends the copy at once, also
 * between writes, and so does `signal`: an output nobody reads any more may never drain.
 */
async function copyOut(pack: Pack, output: Writable, buffers: ReadBuffers, sent: { bytes: number }, signal: AbortSignal): Promise<void> {
  let outputError: Error | undefined;
  const onError = (err: Error): void => {
    outputError = err;
    pack.destroy(err);
  };
  output.on('error', onError);
  try {
    for await (const chunk of pack as AsyncIterable<Buffer>) {
      const ready = output.write(chunk, (err) => {
        if (err) return;
        sent.bytes += chunk.length;
        buffers.written(chunk);
      });
      if (!ready) await drained(output, signal);
    }
  } catch (err) {
    throw outputError ?? err;
  } finally {
    output.off('error', onError);
  }
}

interface Emitter {
  readonly destroyed: boolean;
  once(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
}

/** Resolves on 'drain'; rejects if the stream fails or closes first, or already has, or `signal` aborts. */
function drained(stream: Emitter, signal?: AbortSignal): Promise<void> {
  if (stream.destroyed) return Promise.reject(new Error('the tar stream was closed before it was complete'));
  if (signal?.aborted) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      stream.off('drain', onDrain);
      stream.off('error', onError);
      stream.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = (): void => done();
    const onError = (err: unknown): void => done(err instanceof Error ? err : new Error(String(err)));
    const onClose = (): void => done(new Error('the tar stream was closed before it was complete'));
    const onAbort = (): void => done(signal?.reason as Error);
    stream.once('drain', onDrain);
    stream.once('error', onError);
    stream.once('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
