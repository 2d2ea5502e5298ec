/**
 * End to end against a private RabbitMQ (@msgbricks/test-support): stompclt receives 2,000 messages into a spool while
 * msghandle drains it with a command per message; msghandle is killed with SIGKILL in the middle and started again.
 * Every message must be handled (at least once), and nothing be left behind.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQS, Message } from '@msgbricks/message';
import * as brokers from '@msgbricks/test-support';
import { type Broker, useTempDir } from '@msgbricks/test-support';
import { checkBuilt, filesOf, msghandle, ROOT, until } from './helpers';

jest.setTimeout(300_000);

let rabbit: Broker;
const tmp = useTempDir('msgbricks-msghandle-e2e-');

beforeAll(async () => {
  checkBuilt();
  rabbit = await brokers.startRabbitMQ();
});

afterAll(async () => {
  await rabbit?.stop();
});

function stompclt(args: string[]): Promise<{ status: number | null; err: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'agents', 'stompclt', 'bin', 'stompclt.js'), ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, err }));
  });
}

const lines = (file: string): string[] => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

test('msghandle end to end - RabbitMQ -> stompclt -> spool -> msghandle --exec, SIGKILL in the middle: 2,000 messages, none lost', async () => {
  const N = 2000;
  const uri = `tcp://${rabbit.host}:${rabbit.ports.stomp}`;
  const auth = `plain name=${rabbit.user} pass=${rabbit.password}`;
  const destination = `/queue/msgbricks.msghandle.${process.pid}`;
  // The broker's queue, filled by stompclt from a spool (as a sender site would).
  const outbox = new DQS(join(tmp.path, 'outbox'));
  for (let i = 0; i < N; i++) {
    await outbox.addMessage(new Message({ header: { destination, persistent: 'true', seq: String(i) }, body: `message ${i}` }));
  }
  const sent = await stompclt([
    '--incoming-queue',
    `path=${outbox.path}`,
    '--outgoing-broker-uri',
    uri,
    '--outgoing-broker-auth',
    auth,
    '--reliable',
    '--remove',
  ]);
  expect([sent.status, await outbox.count()]).toEqual([0, 0]);

  const spool = join(tmp.path, 'inbox');
  const log = join(tmp.path, 'handled');
  const receiving = stompclt([
    '--incoming-broker-uri',
    uri,
    '--incoming-broker-auth',
    auth,
    '--subscribe',
    `destination=${destination}`,
    '--outgoing-queue',
    `path=${spool}`,
    '--reliable',
    '--count',
    String(N),
  ]);
  const args = [
    '--queue',
    `path=${spool}`,
    '--exec',
    `echo "$MSG_HEADER_SEQ" >> ${log}`,
    '--concurrency',
    '4',
    '--max-lock',
    '2',
    '--purge-interval',
    '0.5',
  ];
  // Wait for the spool to exist (the receiver makes it), then the first handler.
  await until(() => fs.existsSync(spool), 'the spool');
  const first = msghandle(args);
  await until(() => lines(log).length >= 300, '300 messages handled by the first msghandle');
  first.child.kill('SIGKILL');
  expect((await first.done).signal).toBe('SIGKILL');
  const beforeKill = new Set(lines(log));
  const locked = filesOf(spool).filter((p) => p.endsWith('.lck')).length;

  const second = msghandle(args);
  const received = await receiving;
  expect([received.status, received.err]).toEqual([0, expect.any(String)]);
  await until(
    () => new Set(lines(log)).size === N && filesOf(spool).length === 0,
    'every message handled, the spool empty',
    240_000,
  );
  second.child.kill('SIGTERM');
  const r = await second.done;
  expect(r.status).toBe(0);
  const handled = lines(log);
  const seqs = new Set(handled);
  expect([...seqs].map(Number).sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i));
  // Duplicates only from the kill: what the first msghandle had started (or read ahead) and not removed.
  expect(handled.length - N).toBeLessThanOrEqual(locked + 4);
  expect(beforeKill.size).toBeGreaterThanOrEqual(300);
});
