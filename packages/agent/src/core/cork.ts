import type { Writable } from 'node:stream';

/**
 * Corks `socket` from the first write of a tick to the end of it, so that what one burst of sends writes (a frame
 * per message, a disposition per delivery) leaves in one writev: one system call and few TCP segments, where the
 * protocol libraries make a write per frame. Shared by the broker modules (stompit's client, rhea's connection).
 */
export function corkPerTick(socket: Writable): void {
  const write = socket.write;
  let corked = false;
  socket.write = function (this: Writable, ...args: unknown[]): boolean {
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      process.nextTick(() => {
        corked = false;
        socket.uncork();
      });
    }
    return (write as (...a: unknown[]) => boolean).apply(socket, args);
  } as typeof socket.write;
}
