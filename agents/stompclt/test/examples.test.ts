/**
 * The example configurations of spool-examples/stompclt (used by spool-examples/systemd/stompclt@.service) are
 * accepted as they are: by the option validation of packages/agent, and by the built command itself
 * (`--status --pidfile` loads and validates the whole configuration without connecting to anything).
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { loadOptions } from '@msgbricks/transfer-cli';
import { stompclt, useTempDir } from './helpers';

const EXAMPLES = join(__dirname, '..', '..', '..', 'spool-examples', 'stompclt');
const UNIT = join(__dirname, '..', '..', '..', 'spool-examples', 'systemd', 'stompclt@.service');

const dir = useTempDir();

describe('stompclt - example configurations (spool-examples/stompclt)', () => {
  test.each(['sender.conf', 'receiver.conf'])('stompclt - %s loads without a problem', (name) => {
    const file = join(EXAMPLES, name);
    const { options } = loadOptions({ configFile: file });
    expect(options.reliable).toBe(true);
    expect(options['timeout-linger']).toBe(30);
    const r = stompclt(['--config', file, '--status', '--pidfile', join(dir.path, 'x.pid')], dir.path);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/not running/);
    expect(r.status).toBe(3); // LSB "not running": the configuration itself was fine (a problem exits 2)
  });

  test('stompclt - sender.conf: a spool to RabbitMQ on localhost, as a daemon', () => {
    const { options } = loadOptions({ configFile: join(EXAMPLES, 'sender.conf') });
    expect(options['incoming-queue']).toMatchObject({ path: '/var/spool/stompclt/out', type: 'DQS' });
    expect(options['outgoing-broker-uri']).toBe('tcp://localhost:61613');
    expect(options['outgoing-broker-auth']).toEqual([{ scheme: 'plain', name: 'guest', pass: 'guest' }]);
    expect(options.loop).toBe(true);
    expect(options.remove).toBe(true);
  });

  test('stompclt - receiver.conf: a RabbitMQ queue to a spool', () => {
    const { options } = loadOptions({ configFile: join(EXAMPLES, 'receiver.conf') });
    expect(options['incoming-broker-uri']).toBe('tcp://localhost:61613');
    expect(options.subscribe).toEqual([{ destination: '/queue/msgbricks.in' }]);
    expect(options['outgoing-queue']).toMatchObject({ path: '/var/spool/stompclt/in', type: 'DQS' });
  });

  test('stompclt - a broken copy of an example is refused (the check above is not vacuous)', () => {
    const bad = join(dir.path, 'bad.conf');
    fs.writeFileSync(bad, `${fs.readFileSync(join(EXAMPLES, 'sender.conf'), 'utf8')}window = lots\n`);
    const r = stompclt(['--config', bad, '--status', '--pidfile', join(dir.path, 'x.pid')], dir.path);
    expect(r.status).toBe(2);
    expect(r.err).toMatch(/window/);
  });

  test('stompclt - the systemd unit runs an instance per configuration, stopping with SIGTERM within the linger', () => {
    const unit = fs.readFileSync(UNIT, 'utf8');
    expect(unit).toMatch(
      /^ExecStart=\/usr\/bin\/env stompclt --config \/etc\/stompclt\/%i\.conf --pidfile \/run\/stompclt\/%i\.pid$/m,
    );
    expect(unit).toMatch(/^Restart=on-failure$/m);
    expect(unit).toMatch(/^KillSignal=SIGTERM$/m);
    expect(unit).toMatch(/^RuntimeDirectory=stompclt$/m);
    const stop = Number(/^TimeoutStopSec=(\d+)$/m.exec(unit)?.[1]);
    for (const name of ['sender.conf', 'receiver.conf']) {
      const linger = loadOptions({ configFile: join(EXAMPLES, name) }).options['timeout-linger'] ?? Number.POSITIVE_INFINITY;
      expect(stop).toBeGreaterThan(linger);
    }
    expect(unit).not.toMatch(/^MemoryDenyWriteExecute=yes/m); // Node's JIT needs it
  });
});
