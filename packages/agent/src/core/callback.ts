import * as fs from 'node:fs';
import { resolve } from 'node:path';
import { MsgbricksError } from '@msgbricks/errors';
import { Message } from '@msgbricks/message';
import type { Callback } from './modules';

export class CallbackError extends MsgbricksError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_AGENT_CALLBACK', message, options);
  }
}

type Returned = Message | string | { header?: Record<string, string>; body?: Buffer | string } | undefined | null;

/** Turns what user code returned into a message or a drop reason. */
function outcome(original: Message, hdr: Record<string, string>, value: Returned): Message | string {
  if (value instanceof Message || typeof value === 'string') return value;
  if (value === undefined || value === null) return original.with({ header: hdr });
  if (typeof value === 'object') return new Message({ header: value.header ?? hdr, body: value.body ?? original.body });
  throw new CallbackError(`check() returned ${typeof value}: return a message, a reason string, or nothing`);
}

/**
 * The in-thread callbacks below run user code on the caller's thread: a slow `check()` blocks its event loop (timers,
 * sockets, broker heart-beats). The commands run the same code in a worker thread instead (WorkerCallback,
 * callback-worker.ts, whose thread loads it with loadCallback below).
 */

/** Inline code (the body of `check(hdr, body, msg, Message)`) or a CommonJS module exporting `check`. */
export type CallbackSource = { readonly code: string } | { readonly path: string };

type InlineFunction = (hdr: Record<string, string>, body: Buffer | string, msg: Message, M: typeof Message) => unknown;

function compileInline(code: string): InlineFunction {
  try {
    return new Function('hdr', 'body', 'msg', 'Message', code) as InlineFunction;
  } catch (err) {
    throw new CallbackError(`invalid callback code: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Inline callback code (stompclt's --callback-code): the body of
 * `check(hdr, body, msg)`, where `hdr` is a modifiable copy of the header and
 * `body` the body. Returning nothing sends the message with `hdr`; returning a
 * string drops it with that reason; returning a Message or `{header, body}` sends that.
 */
export function inlineCallback(code: string): Callback {
  const fn = compileInline(code);
  return {
    check(msg) {
      const hdr = msg.header;
      return outcome(msg, hdr, fn(hdr, msg.body, msg, Message) as Returned);
    },
  };
}

/** A callback module (stompclt's --callback-path): a CommonJS file exporting check and optionally start, idle, stop. */
export function moduleCallback(path: string): Callback {
  const file = resolve(path);
  if (!fs.existsSync(file)) throw new CallbackError(`callback module not found: ${file}`);
  let mod: unknown;
  try {
    mod = require(file);
  } catch (err) {
    throw new CallbackError(`cannot load callback module ${file}: ${(err as Error).message}`, { cause: err });
  }
  const exported = (mod ?? {}) as Partial<Callback> & { default?: Partial<Callback> };
  const m = typeof mod === 'object' && typeof exported.check !== 'function' ? (exported.default ?? {}) : exported;
  const check = m.check;
  if (typeof check !== 'function') throw new CallbackError(`callback module ${file} exports no check() function`);
  return {
    start: m.start?.bind(m),
    idle: m.idle?.bind(m),
    stop: m.stop?.bind(m),
    async check(msg) {
      return outcome(msg, msg.header, (await check.call(m, msg)) as Returned);
    },
  };
}

/**
 * The callback of `source` as the worker thread runs it (callback-thread.ts): moduleCallback, or inlineCallback whose
 * value is awaited too (the thread's replies are asynchronous anyway).
 */
export function loadCallback(source: CallbackSource): Callback {
  if ('path' in source) return moduleCallback(source.path);
  const fn = compileInline(source.code);
  return {
    async check(msg) {
      const hdr = msg.header;
      return outcome(msg, hdr, (await fn(hdr, msg.body, msg, Message)) as Returned);
    },
  };
}
