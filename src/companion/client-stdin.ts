/**
 * The stdin of a command the plugin execs, and what its end means (docs/companion.md,
 * Cancellation). Kubernetes does not end an exec'd process when its client disconnects (the
 * backup was cancelled or timed out, the plugin was killed): the kubelet only closes the
 * process's stdin, and only for an exec opened with stdin. A plugin that asks for it
 * (`cancelOnStdinEnd` in its first stdin line) holds stdin open for the exec's whole life, so
 * that the end of stdin means it has gone, and the command stops instead of scanning the
 * database or reading the disk for nobody. Without that request the end means nothing: older
 * plugins close stdin right after the tar request (v5) or open none (`counts`).
 */
import type { Readable } from 'node:stream';
import { CompanionError } from './errors.js';

/** Why a command stopped: its client asked to be treated as gone when stdin ends, and it ended. */
export class ClientGoneError extends CompanionError {
  constructor() {
    super(
      'stopped: stdin ended, so the plugin that ran this command has gone (its backup ended, was cancelled or timed out, or the plugin was killed); ' +
        'it asked (cancelOnStdinEnd) for the command to stop then',
    );
  }
}

export class ClientStdin {
  private readonly controller = new AbortController();
  /** Aborted with a ClientGoneError once stdin ends after cancelOnEnd(). */
  readonly signal = this.controller.signal;
  private ended = false;
  private armed = false;
  private released = false;

  constructor(private readonly input: Readable) {
    // From the start: a stdin that ends while nobody listens (between the first line and
    // cancelOnEnd()) would otherwise never be noticed.
    input.once('end', () => {
      this.ended = true;
      if (this.armed) this.controller.abort(new ClientGoneError());
    });
    // A stdin that fails can no longer say anything; without a listener its error would crash the command.
    input.on('error', () => undefined);
  }

  /**
   * The first line (without its newline), or what came before the end if no newline did;
   * undefined if stdin ended (or was released) before any byte. The rest of the chunk is dropped:
   * a client sends one line.
   */
  firstLine(maxBytes: number, tooLong: () => Error): Promise<string | undefined> {
    const { input } = this;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let length = 0;
      const settle = (finish: () => void): void => {
        input.off('data', onData);
        input.off('end', onEnd);
        input.off('close', onEnd);
        input.pause();
        finish();
      };
      const onData = (chunk: Buffer | string): void => {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        const newline = buf.indexOf(0x0a);
        chunks.push(newline >= 0 ? buf.subarray(0, newline) : buf);
        length += newline >= 0 ? newline : buf.length;
        if (newline >= 0) settle(() => resolve(Buffer.concat(chunks).toString('utf8')));
        else if (length > maxBytes) settle(() => reject(tooLong()));
      };
      const onEnd = (): void => settle(() => resolve(length === 0 ? undefined : Buffer.concat(chunks).toString('utf8')));
      if (this.ended || this.released) return onEnd();
      input.on('data', onData);
      input.once('end', onEnd);
      input.once('close', onEnd); // released meanwhile
    });
  }

  /** The client asked for it: from now on the end of stdin aborts `signal`. Whatever else comes is dropped. */
  cancelOnEnd(): void {
    if (this.released) return;
    this.armed = true;
    if (this.ended) this.controller.abort(new ClientGoneError());
    else this.input.resume();
  }

  /** Stops reading stdin: an open one would keep the process alive after its work is done. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.armed = false;
    this.input.destroy();
  }
}
