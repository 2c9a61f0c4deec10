/** Opening a store from its location (`s3://bucket/prefix`, `file:///abs/dir`). */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StoreError } from './errors.js';
import { FileStore, type FileStoreOptions } from './file.js';
import { checkKey } from './keys.js';
import { S3Store } from './s3.js';
import type { S3Options } from './s3-client.js';
import type { ObjectStore } from './types.js';

export type StoreLocation = { kind: 's3'; bucket: string; prefix: string } | { kind: 'file'; path: string };

export interface OpenStoreOptions {
  s3?: S3Options;
  file?: FileStoreOptions;
}

function invalid(root: string, why: string): StoreError {
  return new StoreError('InvalidKey', `invalid store location ${JSON.stringify(root)}: ${why}`, { operation: 'open', target: root });
}

const WHY_PREFIX =
  'backups need a non-empty prefix, as in s3://bucket/victoria-backups. vmbackup\'s layout cannot live at a bucket root ' +
  '(stock vmbackup refuses "s3://bucket" and writes keys starting with "/" for "s3://bucket/"), and in a bucket Velero uses, ' +
  'plugin data must stay under <bsl-prefix>/plugins/ (Velero marks a location Unavailable when other folders appear)';

/** Parse without opening. Throws StoreError('InvalidKey') with the reason. */
export function parseStoreLocation(root: string): StoreLocation {
  if (root.startsWith('s3://')) {
    const rest = root.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    if (!bucket) throw invalid(root, 'no bucket name (expected s3://bucket/prefix)');
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(bucket)) throw invalid(root, `${JSON.stringify(bucket)} is not a bucket name`);
    if (slash < 0) throw invalid(root, `no prefix: ${WHY_PREFIX}`);
    const prefix = rest.slice(slash + 1).replace(/\/+$/, '');
    if (!prefix) throw invalid(root, `the bucket root is not a backup location: ${WHY_PREFIX}`);
    if (/[?#]/.test(prefix)) throw invalid(root, 'the prefix must not contain "?" or "#"');
    try {
      checkKey(prefix, 'open');
    } catch (err) {
      throw invalid(root, `bad prefix: ${(err as Error).message.replace(/^open: /, '')}`);
    }
    return { kind: 's3', bucket, prefix };
  }
  if (root.startsWith('file:')) {
    // A URL's query and fragment are not part of its path: file:///b/vm#1 would be /b/vm, shared
    // with every other `#…` root there.
    if (/[?#]/.test(root)) throw invalid(root, 'a "?" or "#" would end the path here: write it as %3F or %23');
    // WHATWG URL parsing makes file:./backups and file:backups into /backups: a relative path the
    // user meant would silently become one at the file system root.
    if (!root.startsWith('file://')) throw invalid(root, 'expected file:///absolute/dir, with three slashes (for a directory here: file://$PWD/dir)');
    let path: string;
    try {
      path = fileURLToPath(root);
    } catch (err) {
      const message = (err as Error).message;
      if (/URI malformed/.test(message)) throw invalid(root, 'a "%" must start an escape such as %20: write a "%" itself as %25');
      throw invalid(root, `not an absolute local file URL (expected file:///abs/dir): ${message}`);
    }
    path = resolve(path);
    if (path === '/') throw invalid(root, 'the file system root is not a backup location: name a directory, e.g. file:///var/backups/victoria');
    return { kind: 'file', path };
  }
  throw invalid(root, 'expected s3://bucket/prefix or file:///absolute/dir');
}

/** Open the store at `root`. Nothing is contacted yet: errors in the S3 settings surface here, network errors on first use. */
export function openStore(root: string, options: OpenStoreOptions = {}): ObjectStore {
  const loc = parseStoreLocation(root);
  if (loc.kind === 's3') return new S3Store({ ...options.s3, bucket: loc.bucket, prefix: loc.prefix });
  return new FileStore(loc.path, options.file);
}
