import { StoreError } from './errors.js';
import type { ByteRange } from './types.js';

/**
 * S3 semantics for every store: a range is two safe integers, start ≤ end; it must start inside
 * the object (checked when the size is known here; S3 itself answers 416 otherwise), and its end
 * is clipped to the last byte.
 */
export function checkRange(range: ByteRange, operation: string, target: string, size?: number): void {
  const ok = Number.isSafeInteger(range.start) && Number.isSafeInteger(range.end) && range.start >= 0 && range.end >= range.start;
  if (!ok) throw new StoreError('InvalidRange', `${operation} ${target}: invalid byte range ${range.start}-${range.end}`, { operation, target });
  if (size !== undefined && range.start >= size) {
    throw new StoreError('InvalidRange', `${operation} ${target}: byte range ${range.start}-${range.end} starts beyond the object's ${size} bytes`, { operation, target });
  }
}
