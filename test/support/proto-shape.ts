/**
 * The wire shape of a set of .proto files, as protobufjs resolves them: every message's fields
 * (number, name, type, repeated or map), every enum's values, every service's methods. Two sets of
 * files with the same shape are the same contract on the wire, whatever their comments, options
 * and field order in the file.
 */
import { isAbsolute, join } from 'node:path';
import protobuf from 'protobufjs';

export type ProtoShape = Record<string, unknown>;

function walk(ns: protobuf.NamespaceBase, out: ProtoShape): void {
  for (const obj of ns.nestedArray) {
    const name = obj.fullName.replace(/^\./, '');
    if (obj instanceof protobuf.Type) {
      out[`message ${name}`] = Object.fromEntries(
        obj.fieldsArray
          .sort((a, b) => a.id - b.id)
          .map((f) => {
            f.resolve();
            const type = f.resolvedType ? f.resolvedType.fullName.replace(/^\./, '') : f.type;
            const map = f instanceof protobuf.MapField ? `map<${f.keyType}, ${type}>` : undefined;
            return [f.id, `${f.repeated ? 'repeated ' : ''}${map ?? type} ${f.name}`];
          }),
      );
    } else if (obj instanceof protobuf.Enum) {
      out[`enum ${name}`] = { ...obj.values };
    } else if (obj instanceof protobuf.Service) {
      out[`service ${name}`] = Object.fromEntries(
        obj.methodsArray.map((m) => {
          m.resolve();
          const t = (s: boolean, type: protobuf.Type | null) => `${s ? 'stream ' : ''}${type!.fullName.replace(/^\./, '')}`;
          return [m.name, `${t(!!m.requestStream, m.resolvedRequestType)} → ${t(!!m.responseStream, m.resolvedResponseType)}`];
        }),
      );
    }
    if (obj instanceof protobuf.Namespace || obj instanceof protobuf.Type) walk(obj, out);
  }
}

/** The shape of `files` (relative to `dir`, which is also where their imports are looked up), without google.protobuf's own types. */
export function protoShape(dir: string, files: string[]): ProtoShape {
  const root = new protobuf.Root();
  // Imports are relative to `dir` (as protoc's -I); google/protobuf/* are protobufjs' own.
  root.resolvePath = (_origin, target) => (isAbsolute(target) || target.startsWith('google/protobuf/') ? target : join(dir, target));
  root.loadSync(files.map((f) => join(dir, f)), { keepCase: true });
  root.resolveAll();
  const out: ProtoShape = {};
  walk(root, out);
  return Object.fromEntries(Object.entries(out).filter(([k]) => !k.includes(' google.')).sort(([a], [b]) => a.localeCompare(b)));
}
