/**
 * `companion tar` and the files/tar protocol on a snapshot laid out like VictoriaMetrics' (symlinks
 * into the data directory), without a server: exact bytes, requests outside the recorded set,
 * stdin that never closes, a stdin whose end stops the tar only when the request asks for it, a
 * file that changes while read, bounded memory, sizes over 8 GiB.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { extract, pack } from 'tar-stream';
import type { CompanionConfig } from '../../src/companion/config.js';
import { CompanionError } from '../../src/companion/errors.js';
import { filesDocument } from '../../src/companion/files.js';
import { asksCancelOnStdinEnd, COMPANION_EXIT, COUNTS_CANCEL_LINE, formatTarRequest, parseCompanionCounts, parseCompanionFiles, parseTarRequest, ProtocolError } from '../../src/companion/protocol.js';
import { STATE_FORMAT, writeRecord } from '../../src/companion/state.js';
import { entryHeader, writeTar } from '../../src/companion/tar.js';
import { listSnapshotFiles } from '../../src/engine/files.js';

const NAME = '20260102030405-18A2B3C4D5E6F708';

interface Extracted {
  name: string;
  size: number;
  data: Buffer;
}

/** Parses a tar; rejects (with what was read so far in `partial`) if it is broken. */
async function untar(bytes: Buffer, partial: Extracted[] = []): Promise<Extracted[]> {
  const ex = extract();
  const done = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      partial.push({ name: entry.header.name, size: entry.header.size, data: Buffer.concat(chunks) });
    }
    return partial;
  })();
  ex.end(bytes);
  return done;
}

function collect(stream: PassThrough): () => Buffer {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return () => Buffer.concat(chunks);
}

/** stdin of an exec: the request line, then more bytes, and never an end. */
function openStdin(request: string): PassThrough {
  const stdin = new PassThrough();
  stdin.write(request);
  stdin.write('anything after the first line is ignored\n');
  return stdin;
}

/** Bytes this process has read through read(2) and friends, all threads (/proc/self/io rchar). */
function bytesReadByThisProcess(): number {
  return Number(/^rchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))![1]);
}

async function exitCodeOf(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (err) {
    expect(err, String(err)).to.be.instanceOf(CompanionError);
    return { code: (err as CompanionError).exitCode, message: (err as Error).message };
  }
  return expect.fail('expected an error');
}

describe('companion tar (local snapshot)', () => {
  let dir: string;
  let config: CompanionConfig;
  let snapDir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'companion-tar-'));
    const dataDir = join(dir, 'data');
    // VictoriaMetrics' layout: the snapshot links into data/small/snapshots/<name>.
    const partDir = join(dataDir, 'data', 'small', 'snapshots', NAME, '2026_01', '17A0_1');
    mkdirSync(partDir, { recursive: true });
    writeFileSync(join(partDir, 'values.bin'), Buffer.alloc(300_000, 7));
    writeFileSync(join(partDir, 'timestamps.bin'), 'ts');
    writeFileSync(join(partDir, 'empty.bin'), '');
    writeFileSync(join(dataDir, 'data', 'small', 'snapshots', NAME, 'parts.json'), '[]');
    snapDir = join(dataDir, 'snapshots', NAME);
    mkdirSync(join(snapDir, 'data'), { recursive: true });
    mkdirSync(join(snapDir, 'metadata'));
    writeFileSync(join(snapDir, 'metadata', 'minTimestampForCompositeIndex'), 'x'.repeat(8));
    writeFileSync(join(snapDir, 'flock.lock'), '');
    symlinkSync(`../../../data/small/snapshots/${NAME}`, join(snapDir, 'data', 'small'));
    writeFileSync(join(dataDir, 'outside.bin'), 'not in the snapshot');
    const stateDir = join(dir, 'state');
    config = {
      kind: 'metrics',
      url: 'http://127.0.0.1:1',
      dataDir,
      stateDir,
      maxSnapshotAgeMs: 3600_000,
      authKeyOption: '--auth-key',
      forceFlushAuthKeyOption: '--force-flush-auth-key',
    };
    await writeRecord(stateDir, {
      format: STATE_FORMAT,
      kind: 'metrics',
      url: config.url,
      createdAt: '2026-01-02T03:04:05.000Z',
      snapshots: [{ kind: 'metrics', name: NAME, handle: NAME, dir: `snapshots/${NAME}`, relPathPrefix: '', createdAt: new Date('2026-01-02T03:04:05Z') }],
      version: 'v1.145.0',
    });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('files lists the snapshot through its symlinks, and the document parses', async () => {
    const doc = parseCompanionFiles(JSON.stringify(await filesDocument(config)));
    expect(doc).to.deep.include({ kind: 'metrics', version: 'v1.145.0', snapshots: [NAME], createdAt: '2026-01-02T03:04:05.000Z' });
    expect(doc.trees).to.have.length(1);
    expect(doc.trees[0]).to.deep.equal({ prefix: '', restoreTo: '', files: await listSnapshotFiles(snapDir), snapshot: NAME });
    expect(doc.trees[0]!.files.map((f) => f.path)).to.deep.equal([
      'data/small/2026_01/17A0_1/empty.bin',
      'data/small/2026_01/17A0_1/timestamps.bin',
      'data/small/2026_01/17A0_1/values.bin',
      'data/small/parts.json',
      'metadata/minTimestampForCompositeIndex',
    ]);
  });

  it('streams the requested files, in the requested order, with identical bytes; stdin stays open', async () => {
    const files = ['metadata/minTimestampForCompositeIndex', 'data/small/2026_01/17A0_1/values.bin', 'data/small/2026_01/17A0_1/empty.bin'];
    const out = new PassThrough();
    const bytes = collect(out);
    const stdin = openStdin(formatTarRequest({ tree: '', files }));
    const result = await writeTar(config, stdin, out);
    expect(result).to.deep.equal({ files: 3, bytes: 8 + 300_000 });
    const entries = await untar(bytes());
    expect(entries.map((e) => e.name)).to.deep.equal(files);
    for (const e of entries) {
      const real = readFileSync(join(snapDir, e.name));
      expect(e.size).to.equal(real.length);
      expect(e.data.equals(real), e.name).to.equal(true);
    }
  });

  it('refuses, before writing anything, paths outside the recorded set (exit 2)', async () => {
    for (const [path, why] of [
      ['data/small/2026_01/17A0_1/nope.bin', /no such file/],
      ['data/small/2026_01', /not a regular file/],
      ['flock.lock', /backups skip it/],
    ] as const) {
      const out = new PassThrough();
      const bytes = collect(out);
      const { code, message } = await exitCodeOf(writeTar(config, openStdin(formatTarRequest({ tree: '', files: ['data/small/parts.json', path] })), out));
      expect(code, path).to.equal(COMPANION_EXIT.usage);
      expect(message).to.include(JSON.stringify(path)).and.match(why).and.include('companion files');
      expect(bytes().length).to.equal(0);
    }
    for (const line of ['{"tree":"","files":["../outside.bin"]}\n', '{"tree":"","files":["/etc/passwd"]}\n', 'not json\n', '{"tree":"partitions/20260101/","files":[]}\n']) {
      const { code } = await exitCodeOf(writeTar(config, openStdin(line), new PassThrough()));
      expect(code, line).to.equal(COMPANION_EXIT.usage);
    }
  });

  it('sends nothing from outside the data directory: a planted link, a record whose dir leads out (exit 2)', async () => {
    const secret = join(dir, 'secret-token');
    writeFileSync(secret, 'service account token');
    symlinkSync(secret, join(snapDir, 'metadata', 'planted'));
    try {
      const out = new PassThrough();
      const bytes = collect(out);
      const { code, message } = await exitCodeOf(writeTar(config, openStdin(formatTarRequest({ tree: '', files: ['metadata/planted'] })), out));
      expect(code).to.equal(COMPANION_EXIT.usage);
      expect(message).to.match(/^snapshot path metadata\/planted → .*secret-token resolves to .*, outside the data directory .*: a database snapshot links only inside it/);
      expect(bytes().length).to.equal(0);
      const listing = await exitCodeOf(filesDocument(config));
      expect(listing.message).to.match(/metadata\/planted .* outside the data directory/);
    } finally {
      rmSync(join(snapDir, 'metadata', 'planted'));
    }
    // A forged record pointing its snapshot at a directory outside.
    const forged = join(dir, 'forged-state');
    await writeRecord(forged, {
      format: STATE_FORMAT,
      kind: 'metrics',
      url: config.url,
      createdAt: '2026-01-02T03:04:05.000Z',
      snapshots: [{ kind: 'metrics', name: NAME, handle: NAME, dir: '..', relPathPrefix: '', createdAt: new Date('2026-01-02T03:04:05Z') }],
    });
    const { code } = await exitCodeOf(writeTar({ ...config, stateDir: forged }, openStdin(formatTarRequest({ tree: '', files: ['secret-token'] })), new PassThrough()));
    expect(code).to.equal(COMPANION_EXIT.usage);
  });

  it('a link replaced after the request was checked is refused when its file is opened: nothing from outside goes out (exit 2)', async () => {
    const link = join(snapDir, 'metadata', 'swapped');
    symlinkSync('minTimestampForCompositeIndex', link);
    const secret = join(dir, 'secret-token-2');
    writeFileSync(secret, 'service account token');
    try {
      const out = new PassThrough();
      const result = exitCodeOf(writeTar(config, openStdin(formatTarRequest({ tree: '', files: ['data/small/2026_01/17A0_1/values.bin', 'metadata/swapped'] })), out));
      // values.bin (300 000 bytes) fills the unread output: the stream waits there, every path already checked.
      await new Promise((resolve) => setTimeout(resolve, 100));
      rmSync(link);
      symlinkSync(secret, link);
      const bytes = collect(out);
      const { code, message } = await result;
      expect(code).to.equal(COMPANION_EXIT.usage);
      expect(message).to.match(/^snapshot path metadata\/swapped → .*secret-token-2 resolves to .*, outside the data directory .*: a database snapshot links only inside it/);
      expect(bytes().includes('service account token')).to.equal(false);
    } finally {
      rmSync(link, { force: true });
    }
  });

  it('refuses a request for the snapshot `companion files` listed once the recorded set was replaced (exit 1); an older plugin\'s request without it is served', async () => {
    const files = ['data/small/parts.json'];
    const out = new PassThrough();
    const bytes = collect(out);
    const { code, message } = await exitCodeOf(writeTar(config, openStdin(formatTarRequest({ tree: '', files, snapshot: 'the-earlier-set' })), out));
    expect(code).to.equal(COMPANION_EXIT.failed);
    expect(message).to.equal(
      `tree "" is snapshot ${NAME} in the recorded set now, not the-earlier-set as \`companion files\` listed it: the set was replaced meanwhile (a pre hook of another backup ran, or serve expired it); back up again`,
    );
    expect(bytes().length).to.equal(0);
    expect(await writeTar(config, openStdin(formatTarRequest({ tree: '', files, snapshot: NAME })), new PassThrough())).to.deep.include({ files: 1 });
    expect(await writeTar(config, openStdin(formatTarRequest({ tree: '', files })), new PassThrough())).to.deep.include({ files: 1 });
  });

  it('exits 3 without a record', async () => {
    const { code, message } = await exitCodeOf(writeTar({ ...config, stateDir: join(dir, 'none') }, openStdin('{}\n'), new PassThrough()));
    expect(code).to.equal(COMPANION_EXIT.noRecord);
    expect(message).to.equal('no snapshot recorded: run `companion hook pre` first');
  });

  it('breaks the stream off, leaving a short entry, when a file changes size while read', async () => {
    const path = 'data/small/2026_01/17A0_1/growing.bin';
    const abs = join(snapDir, path);
    writeFileSync(abs, Buffer.alloc(4 << 20, 1));
    try {
      const out = new PassThrough({ highWaterMark: 16 * 1024 });
      const tarring = writeTar(config, openStdin(formatTarRequest({ tree: '', files: [path] })), out);
      // The header is out once the first bytes are readable; the file then grows.
      await new Promise((resolve) => out.once('readable', resolve));
      appendFileSync(abs, 'more');
      const bytes = collect(out);
      const { code, message } = await exitCodeOf(tarring);
      expect(code).to.equal(COMPANION_EXIT.failed);
      expect(message).to.include(abs).and.include('changed size while it was read').and.include(`${4 << 20} bytes when its tar header was written, ${(4 << 20) + 4} now`);
      const partial: Extracted[] = [];
      let failed = false;
      await untar(bytes(), partial).catch(() => (failed = true));
      expect(failed, 'the tar is unreadable').to.equal(true);
      expect(partial, 'no complete entry').to.have.length(0);
    } finally {
      rmSync(abs);
    }
  });

  it('reads only as fast as the output drains (bounded memory)', async () => {
    const path = 'data/small/2026_01/17A0_1/big.bin';
    const size = 64 << 20;
    writeFileSync(join(snapDir, path), Buffer.alloc(size, 3));
    try {
      const out = new PassThrough({ highWaterMark: 64 * 1024 });
      const before = bytesReadByThisProcess();
      const tarring = writeTar(config, openStdin(formatTarRequest({ tree: '', files: [path] })), out);
      // Until the output is full (the tar has started, however slow the machine), then a while longer.
      for (const deadline = Date.now() + 10_000; Date.now() < deadline && out.writableLength + out.readableLength < 64 * 1024; ) await sleep(20);
      await sleep(300);
      const held = out.writableLength + out.readableLength;
      const read = bytesReadByThisProcess() - before;
      console.log(`      with nobody reading: ${(read / 1048576).toFixed(2)} MiB of the ${size >> 20} MiB file read, ${(held / 1024).toFixed(0)} KiB buffered in the output`);
      expect(held).to.be.at.least(64 * 1024).and.lessThan(1 << 20);
      expect(read).to.be.greaterThan(0).and.lessThan(4 << 20);
      let total = 0;
      out.on('data', (c: Buffer) => (total += c.length));
      expect(await tarring).to.deep.equal({ files: 1, bytes: size });
      expect(total).to.equal(512 + size + 1024); // header, data (a multiple of 512), end of archive
    } finally {
      rmSync(join(snapDir, path));
    }
  });

  it('through a pipe to a slow reader, reuses its read buffers and every byte arrives intact', async () => {
    // A pipe's write callback comes once the kernel has the bytes: only then may a read buffer be
    // filled again. Random content, so a buffer refilled too early could not go unnoticed.
    const paths = ['data/small/2026_01/17A0_1/random-a.bin', 'data/small/2026_01/17A0_1/random-b.bin'];
    const contents = [randomBytes((6 << 20) + 12345), randomBytes(700_000)];
    paths.forEach((path, i) => writeFileSync(join(snapDir, path), contents[i]!));
    const cat = spawn('cat', [], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const allocated = { slow: 0 };
      const allocUnsafeSlow = Buffer.allocUnsafeSlow;
      Buffer.allocUnsafeSlow = (size: number) => {
        allocated.slow++;
        return allocUnsafeSlow(size);
      };
      const received: Buffer[] = [];
      const reading = (async () => {
        for await (const chunk of cat.stdout) {
          received.push(chunk as Buffer);
          await sleep(1); // slower than the writer: the pipe fills, writes wait
        }
      })();
      let result;
      try {
        result = await writeTar(config, openStdin(formatTarRequest({ tree: '', files: paths })), cat.stdin);
      } finally {
        Buffer.allocUnsafeSlow = allocUnsafeSlow;
      }
      cat.stdin.end();
      await reading;
      expect(result).to.deep.equal({ files: 2, bytes: contents[0]!.length + contents[1]!.length });
      const entries = await untar(Buffer.concat(received));
      expect(entries.map((e) => e.name)).to.deep.equal(paths);
      entries.forEach((e, i) => expect(e.data.equals(contents[i]!), e.name).to.equal(true));
      // 27 reads of 256 KiB for 6.7 MiB; backpressure keeps a few buffers in flight.
      expect(allocated.slow, 'read buffers allocated').to.be.within(1, 8);
    } finally {
      cat.kill();
      for (const path of paths) rmSync(join(snapDir, path));
    }
  });

  it('stops at once when the reader goes away mid-stream', async () => {
    const path = 'data/small/2026_01/17A0_1/big.bin';
    writeFileSync(join(snapDir, path), Buffer.alloc(16 << 20, 3));
    try {
      const out = new PassThrough({ highWaterMark: 16 * 1024 });
      const tarring = writeTar(config, openStdin(formatTarRequest({ tree: '', files: [path, path] })), out);
      await new Promise((resolve) => out.once('readable', resolve));
      out.destroy(new Error('write EPIPE (simulated)'));
      const err = await tarring.then(
        () => expect.fail('expected the reader to be missed'),
        (e: unknown) => e as Error,
      );
      expect(err.message).to.equal('write EPIPE (simulated)');
    } finally {
      rmSync(join(snapDir, path));
    }
  });

  it('with cancelOnStdinEnd, stops when stdin ends (the client has gone), also while the output is full (exit 1)', async () => {
    const path = 'data/small/2026_01/17A0_1/big.bin';
    writeFileSync(join(snapDir, path), Buffer.alloc(16 << 20, 3));
    try {
      const out = new PassThrough({ highWaterMark: 16 * 1024 }); // never read: the tar waits for it to drain
      const stdin = openStdin(formatTarRequest({ tree: '', files: [path], cancelOnStdinEnd: true }));
      const tarring = exitCodeOf(writeTar(config, stdin, out));
      for (const deadline = Date.now() + 10_000; Date.now() < deadline && out.writableLength < 16 * 1024; ) await sleep(20);
      stdin.end();
      const { code, message } = await tarring;
      expect(code).to.equal(COMPANION_EXIT.failed);
      expect(message).to.match(/^stopped: stdin ended, so the plugin that ran this command has gone /);
      expect(stdin.destroyed, 'stdin released').to.equal(true);
    } finally {
      rmSync(join(snapDir, path));
    }
  });

  it('with cancelOnStdinEnd, a stdin that ended with the request sends nothing; without it (older plugins close stdin right after the line) the whole tar goes out', async () => {
    const files = ['metadata/minTimestampForCompositeIndex', 'data/small/2026_01/17A0_1/values.bin'];
    const gone = new PassThrough();
    const nothing = collect(gone);
    const { code } = await exitCodeOf(writeTar(config, new PassThrough().end(formatTarRequest({ tree: '', files, cancelOnStdinEnd: true })), gone));
    expect(code).to.equal(COMPANION_EXIT.failed);
    expect(nothing().length).to.equal(0);

    const out = new PassThrough();
    const bytes = collect(out);
    expect(await writeTar(config, new PassThrough().end(formatTarRequest({ tree: '', files })), out)).to.deep.equal({ files: 2, bytes: 8 + 300_000 });
    expect((await untar(bytes())).map((e) => e.name)).to.deep.equal(files);
  });

  it('writes sizes over 8 GiB (11 octal digits) that tar-stream reads back', async () => {
    const size = 9 * 1024 ** 3 + 5;
    const p = pack();
    const sink = p.entry(entryHeader('data/small/huge.bin', size, new Date('2026-01-02T03:04:05Z')));
    sink.on('error', () => undefined);
    sink.write(Buffer.alloc(512));
    // Only the headers are needed: take the first blocks, then read them back with extract.
    const head: Buffer[] = [];
    for await (const chunk of p as AsyncIterable<Buffer>) {
      head.push(chunk);
      if (Buffer.concat(head).length >= 2048) break;
    }
    p.destroy();
    const ex = extract();
    const header = new Promise<{ name: string; size: number }>((resolve) => ex.on('entry', (h) => resolve(h)));
    ex.on('error', () => undefined);
    ex.write(Buffer.concat(head));
    expect(await header).to.include({ name: 'data/small/huge.bin', size });
    // The ustar header itself carries the size in base-256 (GNU), the pax record in decimal.
    const bytes = Buffer.concat(head).toString('latin1');
    expect(bytes).to.include(`size=${size}\n`);
  });
});

describe('companion protocol', () => {
  it('round-trips the tar request and rejects unsafe paths', () => {
    const req = { tree: 'partitions/20260101/', files: ['datadb/parts.json', 'indexdb/x/y.bin'] };
    expect(parseTarRequest(formatTarRequest(req).trim())).to.deep.equal(req);
    const named = { ...req, snapshot: '20260101-x' };
    expect(parseTarRequest(formatTarRequest(named).trim())).to.deep.equal(named);
    const cancelling = { ...named, cancelOnStdinEnd: true };
    expect(parseTarRequest(formatTarRequest(cancelling).trim())).to.deep.equal(cancelling);
    for (const bad of ['{"tree":"partitions","files":[]}', '{"tree":"","files":["a/../b"]}', '{"tree":"","files":"a"}', '[]']) {
      expect(() => parseTarRequest(bad), bad).to.throw(ProtocolError);
    }
    expect(() => parseTarRequest('{"tree":"","files":[],"cancelOnStdinEnd":"yes"}')).to.throw(ProtocolError, 'tar request "cancelOnStdinEnd" must be true or false');
  });

  it('reads the request of counts to be cancelled when stdin ends; anything else is no request', () => {
    expect(COUNTS_CANCEL_LINE).to.equal('{"cancelOnStdinEnd":true}\n');
    expect(asksCancelOnStdinEnd(COUNTS_CANCEL_LINE.trim())).to.equal(true);
    for (const other of ['', 'not json', '{"cancelOnStdinEnd":false}', '{"cancelOnStdinEnd":"true"}', '[true]', 'null', '{}']) {
      expect(asksCancelOnStdinEnd(other), other).to.equal(false);
    }
  });

  it('names the bad field of a files document', () => {
    const good = { format: 'velero-plugin-victoria/companion-files/v2', kind: 'logs', url: 'http://vl', createdAt: '2026-01-01T00:00:00.000Z', snapshots: ['n'], trees: [{ prefix: 'partitions/20260101/', restoreTo: 'partitions/20260101', files: [{ path: 'datadb/a', size: 1, mtimeMs: 5 }] }] };
    expect(parseCompanionFiles(JSON.stringify(good)).trees[0]!.files[0]!.size).to.equal(1);
    const bad = structuredClone(good);
    bad.trees[0]!.files[0]!.size = -1;
    expect(() => parseCompanionFiles(JSON.stringify(bad))).to.throw(ProtocolError, 'trees[0].files[0].size must be a non-negative integer');
    expect(() => parseCompanionFiles(JSON.stringify({ ...good, format: 'other' }))).to.throw(ProtocolError, /same version/);
    expect(() => parseCompanionFiles('{"format"')).to.throw(ProtocolError, /not JSON/);
    const escaping = structuredClone(good);
    escaping.trees[0]!.restoreTo = '../20260101';
    expect(() => parseCompanionFiles(JSON.stringify(escaping))).to.throw(ProtocolError, 'unsafe restore location "../20260101"');
    const twice = structuredClone(good);
    twice.trees.push({ ...good.trees[0]!, files: [] });
    expect(() => parseCompanionFiles(JSON.stringify(twice))).to.throw(ProtocolError, 'two trees have the prefix "partitions/20260101/"');
  });

  it('names the bad field of a counts document', () => {
    const good = { counts: { rows: 7, 'rows.20260101': 7 }, countedBefore: '2026-01-01T00:00:00.000Z', durationSeconds: 0.5 };
    expect(parseCompanionCounts(JSON.stringify(good))).to.deep.equal(good);
    expect(() => parseCompanionCounts(JSON.stringify({ ...good, counts: { rows: 1.5 } }))).to.throw(ProtocolError, 'counts.rows must be a non-negative integer');
    expect(() => parseCompanionCounts(JSON.stringify({ ...good, countedBefore: 'yesterday' }))).to.throw(ProtocolError, /countedBefore/);
    const from = { ...good, countedFrom: '2025-12-02T01:00:00.000Z' };
    expect(parseCompanionCounts(JSON.stringify(from))).to.deep.equal(from);
    expect(() => parseCompanionCounts(JSON.stringify({ ...good, countedFrom: 7 }))).to.throw(ProtocolError, /countedFrom/);
    expect(() => parseCompanionCounts(JSON.stringify({ ...good, countedFrom: 'last month' }))).to.throw(ProtocolError, /countedFrom/);
    expect(() => parseCompanionCounts('')).to.throw(ProtocolError, /not JSON/);
  });
});

