/**
 * A FileReader over tar streams: the byte source of the Velero path, where the companion sidecar
 * streams the requested snapshot files as one tar (docs/velero-backup.md). Entries must arrive in
 * the requested order with the listed sizes; anything else fails the read instead of producing a
 * backup that looks fine. The tar parser is tar-stream's; each entry's stream is handed to the
 * engine, and the next entry is parsed only once that stream has been consumed, so memory stays
 * bounded by the stream buffers whatever the file sizes.
 *
 * Several streams can run at once (`streams`): the requested files are dealt round-robin into
 * that many lists, one tar stream each, so the producer's reads and the network overlap.
 */
import type { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import type { FileEntry, FileReader, FileStream, SnapshotFile } from './files.js';

/** Opens one tar stream of exactly these files, in this order. */
export type OpenTar = (files: SnapshotFile[], signal: AbortSignal) => Promise<Readable>;

/** One tar stream's entries; `signal` ends the stream (the exec too) and fails the read. */
async function* readOne(files: SnapshotFile[], open: OpenTar, signal: AbortSignal): AsyncGenerator<FileEntry> {
  const source = await open(files, signal);
  const parser = extract();
  source.on('error', (err) => parser.destroy(err));
  source.pipe(parser);
  // A generator waiting for its next entry (which comes only once the current one was read) ends
  // here, not when someone reads the entry that nobody will read any more.
  const halt = () => parser.destroy(signal.reason as Error);
  signal.addEventListener('abort', halt, { once: true });
  let i = 0;
  try {
    for await (const entry of parser) {
      const want = files[i];
      if (!want) throw new Error(`the tar stream has more entries than the ${files.length} requested (${entry.header.name})`);
      if (entry.header.name !== want.path) throw new Error(`the tar stream sent ${entry.header.name} where ${want.path} was expected`);
      if (entry.header.size !== want.size) {
        throw new Error(`${want.path} has ${entry.header.size} bytes in the tar stream, ${want.size} were listed: it changed since the snapshot was listed`);
      }
      i++;
      // tar-stream parses the next header only after this entry's bytes were read, so asking for
      // the next entry early (the engine does, to overlap uploads) cannot skip or steal data.
      yield { file: want, stream: entry as FileStream }; // tar-stream entries yield Buffers
    }
    if (i < files.length) throw new Error(`the tar stream ended after ${i} of ${files.length} files (next: ${files[i]!.path})`);
  } finally {
    signal.removeEventListener('abort', halt);
    source.destroy();
    parser.destroy();
  }
}

/**
 * Merges several entry generators, handing out entries as they become ready. Closed early (a
 * failure), it aborts `stop`, which ends every stream: a generator's return() waits for its
 * pending next(), which would otherwise wait for another worker to read an entry it had dropped.
 */
async function* merge(sources: AsyncGenerator<FileEntry>[], stop: AbortController): AsyncGenerator<FileEntry> {
  const pending = new Map<number, Promise<{ index: number; result: IteratorResult<FileEntry> }>>();
  const pull = (index: number) => {
    const next = sources[index]!.next().then((result) => ({ index, result }));
    // Once one stream has failed nobody awaits the others, whose failure (the same cut connection,
    // typically) must not become an unhandled rejection that takes the plugin process down.
    next.catch(() => undefined);
    pending.set(index, next);
  };
  sources.forEach((_, i) => pull(i));
  try {
    while (pending.size > 0) {
      const { index, result } = await Promise.race(pending.values());
      if (result.done) {
        pending.delete(index);
        continue;
      }
      pull(index);
      yield result.value;
    }
  } finally {
    stop.abort(new Error('the file reader was closed'));
    await Promise.allSettled(sources.map((s) => s.return(undefined)));
  }
}

export function tarFileReader(open: OpenTar, options: { streams?: number; signal?: AbortSignal } = {}): FileReader {
  const streams = Math.max(1, options.streams ?? 1);
  const signal = options.signal ?? new AbortController().signal;
  return {
    read(files) {
      const stop = new AbortController();
      if (files.length === 0) return merge([], stop);
      const lists: SnapshotFile[][] = Array.from({ length: Math.min(streams, files.length) }, () => []);
      files.forEach((f, i) => lists[i % lists.length]!.push(f));
      const ended = AbortSignal.any([signal, stop.signal]);
      return merge(lists.map((list) => readOne(list, open, ended)), stop);
    },
  };
}
