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

export function toServiceError(err: unknown): Partial<ServiceError> {
  const code = err instanceof PluginError ? err.code : status.UNKNOWN;
  const raw = err instanceof Error ? err.message : String(err);
  // Velero shows this text in `velero backup describe`; it must never be empty or carry secrets.
  const details = redact(raw.trim() === '' ? 'velero-plugin-victoria: unexpected error without a message' : raw);
  return { code, details, metadata: new Metadata() };
}
