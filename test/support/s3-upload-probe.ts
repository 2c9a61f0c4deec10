/**
 * Child process of the S3 memory test: uploads a generated stream through S3Store and reports the
 * memory it needed, measured in a process of its own (run with --expose-gc) so that nothing else
 * the test process holds or frees blurs the numbers. Input: one JSON argument; output: one JSON line.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { S3Store } from '../../src/store/s3.js';
import type { S3StoreOptions } from '../../src/store/s3-client.js';

interface ProbeInput {
  store: S3StoreOptions;
  key: string;
  size: number;
  seed: number;
}

const input = JSON.parse(process.argv[2]!) as ProbeInput;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

function source(size: number, seed: number): { stream: Readable; digest: () => string } {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16, 0));
  const hash = createHash('sha256');
  const zeros = Buffer.alloc(256 * 1024);
  let left = size;
  const stream = new Readable({
    read() {
      if (left === 0) return void this.push(null);
      const n = Math.min(left, zeros.length);
      left -= n;
      const data = cipher.update(zeros.subarray(0, n));
      hash.update(data);
      this.push(data);
    },
  });
  return { stream, digest: () => hash.digest('hex') };
}

const store = new S3Store(input.store);
await store.put(`${input.key}.warm-up`, Buffer.alloc(1), 1); // load and connect everything first
gc();
const before = process.memoryUsage();
const peak = { rss: before.rss, arrayBuffers: before.arrayBuffers };
const sampler = setInterval(() => {
  gc(); // what is held, not what awaits collection
  const m = process.memoryUsage();
  peak.rss = Math.max(peak.rss, m.rss);
  peak.arrayBuffers = Math.max(peak.arrayBuffers, m.arrayBuffers);
}, 20);
const src = source(input.size, input.seed);
const t0 = Date.now();
await store.put(input.key, src.stream, input.size);
const seconds = (Date.now() - t0) / 1000;
clearInterval(sampler);
store.destroy();
const MiB = 1024 * 1024;
process.stdout.write(
  `${JSON.stringify({
    sha256: src.digest(),
    seconds,
    baseRssMiB: before.rss / MiB,
    rssGrowthMiB: (peak.rss - before.rss) / MiB,
    buffersGrowthMiB: (peak.arrayBuffers - before.arrayBuffers) / MiB,
  })}\n`,
);
