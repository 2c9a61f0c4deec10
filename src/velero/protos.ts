/**
 * Loads the Velero and go-plugin service definitions for @grpc/grpc-js.
 *
 * The .proto files in proto/ are the single source of truth. In a development checkout they are
 * read from disk; in the single executable (Node SEA) they are embedded as SEA assets under the
 * key `proto/<relative path>` by scripts/build.sh. Either way they are parsed here, so both paths
 * run the same code.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import sea from 'node:sea';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import type { GrpcObject, ServiceClientConstructor } from '@grpc/grpc-js';
import { loadPackageDefinition } from '@grpc/grpc-js';

/** Every .proto the server needs, relative to proto/. */
const PROTO_FILES = [
  'Shared.proto',
  'PluginLister.proto',
  'DeleteItemAction.proto',
  'backupitemaction/v2/BackupItemAction.proto',
  'restoreitemaction/v2/RestoreItemAction.proto',
  'go-plugin/grpc_controller.proto',
  'go-plugin/grpc_broker.proto',
  'go-plugin/grpc_stdio.proto',
  'grpc/health/v1/health.proto',
] as const;

const WELL_KNOWN = ['google/protobuf/empty.proto', 'google/protobuf/timestamp.proto', 'google/protobuf/duration.proto'];

function readProto(relativePath: string): string {
  if (sea.isSea()) return sea.getAsset(`proto/${relativePath}`, 'utf8');
  return readFileSync(fileURLToPath(new URL(`../../proto/${relativePath}`, import.meta.url)), 'utf8');
}

/**
 * Parse all files into one protobufjs root. `keepCase` matters: Velero's AppliesTo responses have a
 * field literally named `ResourceSelector`, and the request fields are camelCase on the wire names.
 */
function loadProtoDefinitions(): protoLoader.PackageDefinition {
  const root = new protobuf.Root();
  for (const file of WELL_KNOWN) {
    const common = protobuf.common.get(file);
    if (!common?.nested) throw new Error(`protobufjs lacks the well-known type file ${file}`);
    root.addJSON(common.nested);
  }
  for (const file of PROTO_FILES) protobuf.parse(readProto(file), root, { keepCase: true });
  root.resolveAll();
  return protoLoader.fromJSON(root.toJSON(), {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
}

export interface VeleroServices {
  PluginLister: ServiceClientConstructor;
  BackupItemActionV2: ServiceClientConstructor;
  RestoreItemActionV2: ServiceClientConstructor;
  DeleteItemAction: ServiceClientConstructor;
  GRPCController: ServiceClientConstructor;
  GRPCBroker: ServiceClientConstructor;
  GRPCStdio: ServiceClientConstructor;
  Health: ServiceClientConstructor;
}

function pick(root: GrpcObject, path: string): ServiceClientConstructor {
  let node: unknown = root;
  for (const part of path.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  if (typeof node !== 'function' || !('service' in node)) throw new Error(`service ${path} missing from proto/`);
  return node as ServiceClientConstructor;
}

/** The service constructors (their `.service` definitions are what the server registers). */
export function loadServices(): VeleroServices {
  const root = loadPackageDefinition(loadProtoDefinitions());
  return {
    PluginLister: pick(root, 'generated.PluginLister'),
    BackupItemActionV2: pick(root, 'v2.BackupItemAction'),
    RestoreItemActionV2: pick(root, 'v2.RestoreItemAction'),
    DeleteItemAction: pick(root, 'generated.DeleteItemAction'),
    GRPCController: pick(root, 'plugin.GRPCController'),
    GRPCBroker: pick(root, 'plugin.GRPCBroker'),
    GRPCStdio: pick(root, 'plugin.GRPCStdio'),
    Health: pick(root, 'grpc.health.v1.Health'),
  };
}
