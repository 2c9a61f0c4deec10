import { expect } from 'chai';
import { progressPrinter } from '../../src/cli/progress.js';
import { formatBytes, type Progress } from '../../src/engine/progress.js';

describe('progress: bytes for people', () => {
  it('uses B, KiB, MiB and GiB, and whole bytes for fractional rates', () => {
    expect(formatBytes(0)).to.equal('0 B');
    expect(formatBytes(121.89054726368158)).to.equal('122 B');
    expect(formatBytes(1536)).to.equal('1.5 KiB');
    expect(formatBytes(12.3 * 1024 * 1024)).to.equal('12.3 MiB');
    expect(formatBytes(1.234 * 1024 ** 3)).to.equal('1.23 GiB');
  });
});

describe('progress: the CLI\'s plain lines', () => {
  const MiB = 1024 * 1024;
  const at = (bytesDone: number, bytesCopied = 0): Progress => ({ phase: 'uploading', filesDone: 1, filesTotal: 3, bytesDone, bytesTotal: 100 * MiB, bytesUploaded: bytesDone - bytesCopied, bytesCopied });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('one line per interval, whose rate is of the bytes moved since the line before: copies add nothing, a stall shows as 0 B/s', async () => {
    const lines: string[] = [];
    const stream = { isTTY: false, write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream;
    const printer = progressPrinter('backup b1', stream, 200);
    const rateOf = (line: string) => Number(/, ([\d.]+) MiB\/s\n$/.exec(line)?.[1]);
    printer.update(at(0));
    await sleep(210);
    printer.update(at(50 * MiB, 40 * MiB)); // 10 MiB uploaded in ~0.2 s, 40 MiB copied
    printer.update(at(60 * MiB, 40 * MiB)); // within the interval: no line
    await sleep(210);
    printer.update(at(60 * MiB, 40 * MiB)); // 10 MiB more since the line before
    await sleep(210);
    printer.update(at(60 * MiB, 40 * MiB)); // nothing moved since
    expect(lines).to.have.length(4);
    expect(lines[0]).to.equal('backup b1 uploading: 1/3 files, 0 B/100.0 MiB (0%), 0 B/s\n');
    expect(lines[1]).to.match(/^backup b1 uploading: 1\/3 files, 50\.0 MiB\/100\.0 MiB \(50%\), /);
    expect(rateOf(lines[1]!), lines[1]).to.be.within(25, 50);
    expect(rateOf(lines[2]!), lines[2]).to.be.within(25, 50);
    expect(lines[3]).to.equal('backup b1 uploading: 1/3 files, 60.0 MiB/100.0 MiB (60%), 0 B/s\n');
  });
});
