/**
 * A loopback TCP proxy that can hold back what the server sends: while held,
 * the client's bytes still reach the server at once, and the server's bytes
 * wait in the proxy until released. For a test of what a client does while
 * an answer (a broker's confirm, say) is late, with the real server behind.
 */
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';

export interface HeldRepliesProxy {
  /** host:port of the proxy, to put in the client's URL instead of the server's. */
  readonly address: string;
  /** From now on the server's bytes wait in the proxy. */
  hold(): void;
  /** Sends what was held, in order, and stops holding. */
  release(): void;
  /** Bytes from the server held so far. */
  readonly heldBytes: number;
  close(): Promise<void>;
}

export async function startHeldRepliesProxy(target: { host: string; port: number }): Promise<HeldRepliesProxy> {
  let holding = false;
  const held: { to: Socket; chunk: Buffer }[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.setNoDelay(true);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (holding) held.push({ to: client, chunk });
      else client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    hold: () => void (holding = true),
    release() {
      holding = false;
      for (const { to, chunk } of held.splice(0)) to.write(chunk);
    },
    get heldBytes() {
      return held.reduce((sum, { chunk }) => sum + chunk.length, 0);
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
