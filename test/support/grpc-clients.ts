/** grpc-js clients for the plugin's services, over its unix socket, for in-process tests. */
import * as grpc from '@grpc/grpc-js';
import { loadServices } from '../../src/velero/protos.js';

export type Unary = (method: string, request: object) => Promise<Record<string, any>>;

export function clientFor(socketPath: string, service: keyof ReturnType<typeof loadServices>): { call: Unary; close(): void } {
  const Ctor = loadServices()[service];
  const client = new Ctor(`unix:${socketPath}`, grpc.credentials.createInsecure());
  const call: Unary = (method, request) =>
    new Promise((resolve, reject) => {
      (client as any)[method](request, (err: grpc.ServiceError | null, res: Record<string, any>) => (err ? reject(err) : resolve(res)));
    });
  return { call, close: () => client.close() };
}
