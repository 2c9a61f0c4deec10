/** An HTTP server on an ephemeral port of 127.0.0.1, for tests that need a real socket to talk to. */
import { once } from 'node:events';
import { createServer, type RequestListener, type Server } from 'node:http';
import { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface LoopbackServer {
  server: Server;
  port: number;
  /** `http://127.0.0.1:<port>` (https for an HTTPS server), no trailing slash. */
  url: string;
  /**
   * Stops listening and ends every connection, also one whose request is left unanswered on
   * purpose: a test is over, and waiting for such a request would hang it.
   */
  close(): Promise<void>;
}

/** Serves `handler`, or listens with a server made by the caller (HTTPS, say). */
export async function startLoopbackServer(handler?: RequestListener | Server): Promise<LoopbackServer> {
  const server = typeof handler === 'object' ? handler : createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    url: `${server instanceof HttpsServer ? 'https' : 'http'}://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve()).closeAllConnections()),
  };
}

/**
 * startLoopbackServer for servers a test starts itself (call it in a describe body): each is closed
 * after its test, also when the test failed before it could close the server.
 */
export function loopbackServerPerTest(): typeof startLoopbackServer {
  const open: LoopbackServer[] = [];
  afterEach(() => Promise.all(open.splice(0).map((s) => s.close())));
  return (handler) => startLoopbackServer(handler).then((s) => {
    open.push(s);
    return s;
  });
}
