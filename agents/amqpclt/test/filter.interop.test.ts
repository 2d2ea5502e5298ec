// amqpclt --filter-on-broker from RabbitMQ's AMQP 1.0, which ignores the jms-selector source filter it asks for: the
// agent's own check still selects, and what it filters is consumed.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { amqpUri, type Broker, brokers, checkBuilt, expectOk, fillSamples, plain, readAll, run, tempDir } from './helpers';

jest.setTimeout(300_000);

let tmp: string;
let rabbit: Broker;

beforeAll(async () => {
  checkBuilt();
  tmp = tempDir();
  rabbit = await brokers.startRabbitMQ();
});

afterAll(async () => {
  await rabbit?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const statistics = (out: string) => /^sent: (\d+), dropped: (\d+), filtered: (\d+), /m.exec(out)?.slice(1).map(Number);
// sample(i): kind is 'text' for even i, 'bin' for odd; seq is i.
const SELECTOR = "kind = 'text' AND seq < 10";

test('amqpclt filter - RabbitMQ AMQP 1.0 ignores the broker-side selector: the agent still filters, nothing lost', async () => {
  const address = `/queue/msgbricks.amqpclt.filter.${process.pid}`;
  const spool = join(tmp, 'to-rabbit');
  await fillSamples(spool, 30, address);
  expectOk(
    await run(
      [
        '--incoming-queue',
        `path=${spool}`,
        '--outgoing-broker-uri',
        amqpUri(rabbit),
        '--outgoing-broker-auth',
        plain(rabbit),
        '--remove',
      ],
      tmp,
    ),
  );
  const receive = (out: string, extra: string[]) =>
    run(
      [
        '--incoming-broker-uri',
        amqpUri(rabbit),
        '--incoming-broker-auth',
        plain(rabbit),
        '--subscribe',
        `destination=${address}`,
        '--reliable',
        '--outgoing-queue',
        `path=${out}`,
        // Generous: on a loaded machine the first delivery may take seconds; ending early would fail the test.
        '--timeout-inactivity',
        '5',
        '-s',
        ...extra,
      ],
      tmp,
    );
  const r = await receive(join(tmp, 'from-rabbit'), ['--filter', SELECTOR, '--filter-on-broker']);
  expectOk(r);
  expect((await readAll(join(tmp, 'from-rabbit'), 'DQS')).map((m) => m.header.seq).sort()).toEqual(['0', '2', '4', '6', '8']);
  expect(statistics(r.out)).toEqual([5, 0, 25]);
  // Consumed, not left on the queue.
  const rest = await receive(join(tmp, 'rest'), []);
  expectOk(rest);
  expect(await readAll(join(tmp, 'rest'), 'DQS')).toEqual([]);
});
