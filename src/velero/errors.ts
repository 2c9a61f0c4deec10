/** Turning exceptions into gRPC statuses Velero can show to a person. */
import { status, type ServiceError } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { redact } from '../common/redact.js';

/** An error with an explicit gRPC status code (anything else becomes UNKNOWN, like Go plugins). */
export class PluginError extends Error {
  constructor(readonly code: status, message: string) {
    super(message);
    this.name = 'PluginError';
  }
}

/** Characters of a message sent to Velero: an error travels in an HTTP/2 trailer (64 KiB at most in Node). */
const MAX_MESSAGE = 16 * 1024;

/**
 * Text for Velero (an error's status, an operation's progress): redacted, cut to MAX_MESSAGE, and
 * well-formed. grpc-js percent-encodes a status message with encodeURI, which throws on a lone
 * surrogate (the cut tail of a command's stderr can start with one) and ends the plugin process;
 * protobuf would send one as invalid UTF-8, which Go refuses.
 */
export function textForVelero(text: string): string {
  // Redacted whole: a cut through a secret would leave a start the patterns no longer recognise.
  const clean = redact(text);
  return (clean.length > MAX_MESSAGE ? `${clean.slice(0, MAX_MESSAGE)}… (${clean.length - MAX_MESSAGE} more characters)` : clean).toWellFormed();
}

export function toServiceError(err: unknown): Partial<ServiceError> {
  const code = err instanceof PluginError ? err.code : status.UNKNOWN;
  const raw = err instanceof Error ? err.message : String(err);
  // Velero shows this text in `velero backup describe`; it must never be empty or carry secrets.
  const details = textForVelero(raw.trim() === '' ? 'velero-plugin-victoria: unexpected error without a message' : raw);
  return { code, details, metadata: new Metadata() };
}
