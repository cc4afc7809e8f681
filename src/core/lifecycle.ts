/**
 * The shape every long-lived object shares: an idempotent `close()` that waits
 * for work in flight, a `closed` promise that resolves (never rejects) once it
 * is done, and `Symbol.asyncDispose` for `await using`.
 */

export interface Closeable {
  close(): Promise<void>;
  readonly closed: Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Wraps a shutdown routine so it runs once; errors reach the first caller of close(). */
export function closeable(shutdown: () => Promise<void>): Closeable {
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= shutdown().finally(resolveClosed));
  return { close, closed, [Symbol.asyncDispose]: close };
}
