/**
 * What the amqpclt tests share: the private brokers' shape, the built command, sample messages and comparisons.
 * The process helpers are stompclt's (agents/stompclt/test/helpers.ts), pointed at agents/amqpclt/dist/main.js.
 */
import * as fs from 'node:fs';
import { DQS, Message } from '@msgbricks/message';
import type { Broker } from '@msgbricks/test-support';
import { AMQPCLT, type Result, start as startCommand } from '../../stompclt/test/helpers';

export * as brokers from '@msgbricks/test-support';
export { locks, type Result, readAll, restartTwiceDuringTransfer, tempDir, waitFor } from '../../stompclt/test/helpers';
export type { Broker };

export function checkBuilt(): void {
  if (!fs.existsSync(AMQPCLT)) throw new Error(`${AMQPCLT} missing: run npx tsc -b first`);
}

/** Starts amqpclt in the background (or stompclt with `cli`). */
export function start(args: string[], cwd: string, cli = AMQPCLT) {
  return startCommand(args, cwd, cli);
}

/** Runs a command to its end, killing it after `ms`. */
export async function run(args: string[], cwd: string, options: { ms?: number; cli?: string } = {}): Promise<Result> {
  const r = start(args, cwd, options.cli);
  const timer = setTimeout(() => r.child.kill('SIGKILL'), options.ms ?? 180_000);
  try {
    return await r.done;
  } finally {
    clearTimeout(timer);
  }
}

export function expectOk(r: Result, what = 'amqpclt'): void {
  if (r.status !== 0) throw new Error(`${what} exited ${r.status}:\n${r.err}`);
}

export const amqpUri = (b: Broker) => `amqp://${b.host}:${b.ports.amqp}`;
export const stompUri = (b: Broker) => `stomp://${b.host}:${b.ports.stomp}`;
export const plain = (b: Broker) => `plain name=${b.user} pass=${b.password}`;

const binary = (i: number) => Buffer.from([0, 255, i & 0xff, 0, 10, 13, 0xfe, 0, (i >> 8) & 0xff]);

/** Message i: text when even, binary (NUL bytes, invalid UTF-8) when odd, with a few headers. */
export function sample(i: number, destination: string): Message {
  const header = {
    destination,
    persistent: 'true',
    seq: String(i),
    kind: i % 2 ? 'bin' : 'text',
    'x-escaped': 'a:b\\c',
    'x-unicode': 'Déjà vu ☺',
  };
  return new Message({ header, body: i % 2 ? binary(i) : `text ${i} Déjà vu ☺ ${'x'.repeat(i % 50)}` });
}

export async function fillSamples(path: string, n: number, destination: string, from = 0): Promise<Message[]> {
  const q = new DQS(path);
  const out: Message[] = [];
  for (let i = from; i < from + n; i += 500) {
    const batch: Message[] = [];
    for (let j = i; j < Math.min(from + n, i + 500); j++) batch.push(sample(j, destination));
    await q.addMany(batch.map((m) => m.serialize()));
    out.push(...batch);
  }
  return out;
}

const bySeq = (ms: Message[]) => [...ms].sort((x, y) => Number(x.getHeader('seq')) - Number(y.getHeader('seq')));

/**
 * Every message arrived exactly once, with its body and text flag, and (unless `headers` is empty) the headers it
 * was sent with (the broker may add its own).
 */
export function expectSame(got: Message[], want: Message[], headers?: readonly string[]): void {
  const g = bySeq(got);
  expect(g.map((m) => m.getHeader('seq'))).toEqual(want.map((m) => m.getHeader('seq')));
  g.forEach((m, i) => {
    const w = want[i] as Message;
    expect([m.getHeader('seq'), m.text]).toEqual([w.getHeader('seq'), w.text]);
    expect(m.body).toEqual(w.body);
    for (const [k, v] of w.headerEntries()) {
      if (headers === undefined || headers.includes(k)) expect([k, m.getHeader(k)]).toEqual([k, v]);
    }
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
