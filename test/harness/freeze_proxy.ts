/**
 * A TCP proxy a test can freeze: while frozen it moves no byte either way, as a
 * process stopped by SIGSTOP (or a network that holds its packets) would look to
 * the server, and once thawed it delivers what it held, in order. A client in this
 * process connected through it keeps running (its timers fire, its clock moves),
 * so a test can pause one archiver's NATS traffic while another in the same
 * process goes on.
 */
import { createServer, connect, type Server, type Socket } from "node:net";

export interface FreezeProxy extends AsyncDisposable {
  /** `nats://127.0.0.1:<port>` of the proxy. */
  readonly url: string;
  freeze(): void;
  thaw(): void;
  close(): Promise<void>;
}

/** Starts a proxy on a free port to `target` (host:port). */
export async function startFreezeProxy(target: { host: string; port: number }): Promise<FreezeProxy> {
  /** A connection: both sockets, and what each direction holds while frozen. */
  interface Link {
    readonly sockets: [Socket, Socket];
    readonly held: [Buffer[], Buffer[]];
  }
  const links = new Set<Link>();
  let frozen = false;
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    const link: Link = { sockets: [client, upstream], held: [[], []] };
    links.add(link);
    // Forwarded by hand, not piped: a piped stream resumes itself on drain, so pause() would not hold it.
    client.on("data", (chunk: Buffer) => (frozen ? link.held[0].push(chunk) : upstream.write(chunk)));
    upstream.on("data", (chunk: Buffer) => (frozen ? link.held[1].push(chunk) : client.write(chunk)));
    const end = () => {
      links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error(`freeze proxy: unexpected address ${String(address)}`);
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= new Promise<void>((resolve) => {
      for (const { sockets } of links) for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }));
  return {
    url: `nats://127.0.0.1:${address.port}`,
    freeze() {
      frozen = true;
    },
    thaw() {
      frozen = false;
      for (const { sockets, held } of links) {
        for (const chunk of held[0].splice(0)) sockets[1].write(chunk);
        for (const chunk of held[1].splice(0)) sockets[0].write(chunk);
      }
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
