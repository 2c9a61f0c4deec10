/**
 * Keys as both stores accept them. One rule set for S3 and file://, so that a backup that works on
 * one works on the other, and so that no key can name a path outside the root: `/` separators, no
 * leading `/`, no empty, `.` or `..` segment, no backslash, no NUL. Segments starting with
 * `TEMP_PREFIX` are reserved for the file store's in-progress writes.
 */
import { StoreError } from './errors.js';

/** Name prefix of the file store's temporary files; never a key segment, never listed. */
export const TEMP_PREFIX = '.vpv-tmp-';

function invalid(what: string, value: string, why: string, operation: string): StoreError {
  return new StoreError('InvalidKey', `${operation}: invalid ${what} ${JSON.stringify(value)}: ${why}`, { operation });
}

function checkCommon(what: string, value: string, operation: string): void {
  if (typeof value !== 'string') throw invalid(what, String(value), 'not a string', operation);
  if (value.startsWith('/')) throw invalid(what, value, 'keys are relative to the store root and must not start with "/"', operation);
  if (value.includes('\\')) throw invalid(what, value, 'backslashes are not allowed (use "/")', operation);
  if (value.includes('\0')) throw invalid(what, value, 'NUL characters are not allowed', operation);
}

function checkSegment(what: string, value: string, segment: string, operation: string): void {
  if (segment === '') throw invalid(what, value, 'empty path segment ("//" or a trailing "/")', operation);
  if (segment === '.' || segment === '..') throw invalid(what, value, `"${segment}" segments are not allowed (a key must not escape the store root)`, operation);
  if (segment.startsWith(TEMP_PREFIX)) throw invalid(what, value, `segments starting with "${TEMP_PREFIX}" are reserved for temporary files`, operation);
}

/** Throws StoreError('InvalidKey') unless `key` is a valid object key. */
export function checkKey(key: string, operation = 'key'): void {
  checkCommon('key', key, operation);
  if (key === '') throw invalid('key', key, 'empty', operation);
  for (const segment of key.split('/')) checkSegment('key', key, segment, operation);
}

/**
 * Throws unless `prefix` is a valid listing prefix: '' or a key prefix. Every segment but the last
 * follows the key rules; the last one may be empty (prefix ends with `/`) or partial.
 */
export function checkPrefix(prefix: string, operation = 'list'): void {
  checkCommon('prefix', prefix, operation);
  const segments = prefix.split('/');
  segments.pop();
  for (const segment of segments) checkSegment('prefix', prefix, segment, operation);
}

/** S3 key order: by UTF-8 bytes (JavaScript's `<` compares UTF-16 units, which differs above U+FFFF). */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
