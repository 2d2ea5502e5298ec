// The same credentials, broker URIs and TLS settings given to a STOMP and an AMQP connection: both accept or
// refuse them alike (the same error code), and what they decode is the same. The rules live once, in the agent's
// connection core; this table keeps the two protocols from drifting apart again.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Credential, TlsSettings } from '@msgbricks/agent';
import { AmqpConnection } from '@msgbricks/amqp';
import { StompConnection } from '@msgbricks/stomp';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'connection-rules-'));
  // resolveTls reads the files, it does not parse them: any text will do.
  writeFileSync(join(dir, 'ca.pem'), 'CA');
  writeFileSync(join(dir, 'client.pem'), 'CERT');
  writeFileSync(join(dir, 'client.key'), 'KEY');
  mkdirSync(join(dir, 'cas'));
  writeFileSync(join(dir, 'cas', 'a.pem'), 'CA-A');
  writeFileSync(join(dir, 'cas', 'b.crt'), 'CA-B');
  writeFileSync(join(dir, 'cas', 'notes.txt'), 'not a CA');
  writeFileSync(join(dir, 'brokers'), '# two brokers\ntcp://a:1\nssl://b:2\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Input {
  uri: string;
  auth?: (Credential | string)[];
  tls?: TlsSettings;
}

/** What a connection made of its input, or the code of the error its constructor threw. */
function outcome(make: (input: Input) => StompConnection | AmqpConnection, input: Input) {
  let c: StompConnection | AmqpConnection;
  try {
    c = make(input);
  } catch (err) {
    return { code: (err as { code?: string }).code, name: (err as Error).name };
  }
  return {
    servers: c.uri.servers.map((s) => ({ host: s.host, ssl: s.ssl, uri: s.uri })),
    settings: { ...c.uri, servers: undefined },
    credentials: c.credentials,
    tls: c.tls,
  };
}

const stomp = (i: Input) => new StompConnection(i);
const amqp = (i: Input) => new AmqpConnection(i);

const file = (name: string) => join(dir, name);

const CASES: [string, () => Input, 'accepted' | string][] = [
  // credentials
  ['plain, a UTF-8 percent-encoded password', () => ({ uri: 'tcp://h:1', auth: ['plain name=guest pass=p%C3%A9'] }), 'accepted'],
  ['plain, an encoded space in the name', () => ({ uri: 'tcp://h:1', auth: ['plain name=gu%20est pass=x'] }), 'accepted'],
  [
    'plain as fields, not encoded',
    () => ({ uri: 'tcp://h:1', auth: [{ scheme: 'plain', name: 'ünï', pass: 'p☺' }] }),
    'accepted',
  ],
  ['none', () => ({ uri: 'tcp://h:1', auth: ['none'] }), 'accepted'],
  ['a bad percent sequence', () => ({ uri: 'tcp://h:1', auth: ['plain name=guest pass=p%zz'] }), 'ERR_BROKER_CREDENTIAL'],
  [
    'percent bytes that are not UTF-8',
    () => ({ uri: 'tcp://h:1', auth: ['plain name=guest pass=%C3'] }),
    'ERR_BROKER_CREDENTIAL',
  ],
  ['plain without a name', () => ({ uri: 'tcp://h:1', auth: ['plain pass=x'] }), 'ERR_BROKER_CREDENTIAL'],
  ['plain without a password', () => ({ uri: 'tcp://h:1', auth: ['plain name=guest'] }), 'ERR_BROKER_CREDENTIAL'],
  [
    'plain as fields without a name',
    () => ({ uri: 'tcp://h:1', auth: [{ scheme: 'plain', pass: 'x' }] }),
    'ERR_BROKER_CREDENTIAL',
  ],
  ['an unknown field', () => ({ uri: 'tcp://h:1', auth: ['plain name=a pass=b user=c'] }), 'ERR_BROKER_CREDENTIAL'],
  ['a field given twice', () => ({ uri: 'tcp://h:1', auth: ['plain name=a name=b pass=c'] }), 'ERR_BROKER_CREDENTIAL'],
  ['a word that is not a field', () => ({ uri: 'tcp://h:1', auth: ['plain name'] }), 'ERR_BROKER_CREDENTIAL'],
  ['an unknown scheme', () => ({ uri: 'tcp://h:1', auth: ['kerberos x=1'] }), 'ERR_BROKER_CREDENTIAL'],
  [
    'x509 over TLS',
    () => ({
      uri: 'ssl://h',
      auth: [`x509 cert=${file('client.pem')} key=${file('client.key')} pass=s%20t ca_file=${file('ca.pem')}`],
    }),
    'accepted',
  ],
  [
    'x509 without TLS',
    () => ({ uri: 'tcp://h:1', auth: [`x509 cert=${file('client.pem')} key=${file('client.key')}`] }),
    'ERR_BROKER_CREDENTIAL',
  ],
  [
    'x509 with one broker of the list without TLS',
    () => ({ uri: 'failover:(ssl://a,tcp://b)', auth: [`x509 cert=${file('client.pem')} key=${file('client.key')}`] }),
    'ERR_BROKER_CREDENTIAL',
  ],
  ['x509 without a key', () => ({ uri: 'ssl://h', auth: [`x509 cert=${file('client.pem')}`] }), 'ERR_BROKER_CREDENTIAL'],
  [
    'x509 with a missing file',
    () => ({ uri: 'ssl://h', auth: [`x509 cert=${file('none.pem')} key=${file('client.key')}`] }),
    'ERR_BROKER_TLS',
  ],
  // URIs
  ['an IPv6 address', () => ({ uri: 'tcp://[::1]:5' }), 'accepted'],
  [
    'a failover list with options',
    () => ({ uri: 'failover:(tcp://a:1,ssl://b:2)?randomize=false&maxReconnectAttempts=3' }),
    'accepted',
  ],
  ['a percent-encoded failover option', () => ({ uri: 'failover:(tcp://a:1)?maxReconnectAttempts=%33' }), 'accepted'],
  ['a file of brokers', () => ({ uri: `file:${file('brokers')}` }), 'accepted'],
  ['a scheme neither module speaks (udp)', () => ({ uri: 'udp://h:1' }), 'ERR_BROKER_URI'],
  ['an unknown scheme', () => ({ uri: 'http://h:1' }), 'ERR_BROKER_URI'],
  ['credentials in the URI', () => ({ uri: 'tcp://guest:guest@h:1' }), 'ERR_BROKER_URI'],
  ['a query on a plain URI', () => ({ uri: 'tcp://h:1?heartbeat=10' }), 'ERR_BROKER_URI'],
  ['a port out of range', () => ({ uri: 'tcp://h:99999' }), 'ERR_BROKER_URI'],
  ['no scheme', () => ({ uri: 'h:61613' }), 'ERR_BROKER_URI'],
  ['a bad percent sequence in a failover option', () => ({ uri: 'failover:(tcp://a:1)?randomize=%zz' }), 'ERR_BROKER_URI'],
  ['a bad failover option', () => ({ uri: 'failover:(tcp://a:1)?randomize=maybe' }), 'ERR_BROKER_URI'],
  ['a missing file of brokers', () => ({ uri: `file:${file('none')}` }), 'ERR_BROKER_URI'],
  ['an empty URI', () => ({ uri: '' }), 'ERR_BROKER_URI'],
  // TLS settings
  [
    'TLS: a CA file, no verification, a name',
    () => ({ uri: 'ssl://h', tls: { ca: file('ca.pem'), verify: false, servername: 'mq' } }),
    'accepted',
  ],
  ['TLS: a directory of CAs', () => ({ uri: 'ssl://h', tls: { ca: [file('cas')] } }), 'accepted'],
  [
    'TLS: a client certificate and key',
    () => ({ uri: 'ssl://h', tls: { cert: file('client.pem'), key: file('client.key'), passphrase: 'pw' } }),
    'accepted',
  ],
  ['TLS: a missing CA file', () => ({ uri: 'ssl://h', tls: { ca: file('none.pem') } }), 'ERR_BROKER_TLS'],
  [
    'TLS: a missing key file',
    () => ({ uri: 'ssl://h', tls: { cert: file('client.pem'), key: file('none.key') } }),
    'ERR_BROKER_TLS',
  ],
];

describe('connection rules - STOMP and AMQP alike', () => {
  test.each(CASES)('connection rules - %s', (_what, input, expected) => {
    const s = outcome(stomp, input());
    const a = outcome(amqp, input());
    expect(a).toEqual(s);
    if (expected === 'accepted') expect(s).toHaveProperty('servers');
    else expect(s).toMatchObject({ code: expected });
  });

  test('connection rules - what the credentials and TLS settings decode to', () => {
    const decoded = (input: Input) => {
      const c = new StompConnection(input);
      return { login: c.credentials.login, x509: c.credentials.x509 !== undefined, tls: c.tls };
    };
    expect(decoded({ uri: 'tcp://h:1', auth: ['plain name=gu%20est pass=p%C3%A9'] }).login).toEqual({
      name: 'gu est',
      pass: 'pé',
    });
    const x509 = decoded({
      uri: 'ssl://h',
      auth: ['none', `x509 cert=${file('client.pem')} key=${file('client.key')} pass=s%20t ca=${file('cas')}`],
    });
    expect(x509).toEqual({
      login: undefined,
      x509: true,
      tls: {
        cert: Buffer.from('CERT'),
        key: Buffer.from('KEY'),
        passphrase: 's t',
        ca: [Buffer.from('CA-A'), Buffer.from('CA-B')],
        verify: true,
        servername: undefined,
        clientCertificate: true,
      },
    });
    expect(decoded({ uri: 'ssl://h', tls: { ca: file('ca.pem'), verify: false } }).tls).toMatchObject({
      ca: [Buffer.from('CA')],
      verify: false,
      clientCertificate: false,
    });
  });

  test('connection rules - the protocols differ only in their own schemes and default ports', () => {
    expect(new StompConnection({ uri: 'ssl://h' }).uri.servers[0]?.port).toBe(61614);
    expect(new AmqpConnection({ uri: 'ssl://h' }).uri.servers[0]?.port).toBe(5671);
    expect(new StompConnection({ uri: 'stomp+nio://h' }).uri.servers[0]).toMatchObject({ port: 61613, ssl: false });
    expect(() => new AmqpConnection({ uri: 'stomp+nio://h' })).toThrow(expect.objectContaining({ code: 'ERR_BROKER_URI' }));
    expect(new AmqpConnection({ uri: 'amqps://h/prod' }).uri.servers[0]).toMatchObject({ port: 5671, ssl: true, vhost: 'prod' });
    // A STOMP URI has no path: the virtual host is the CONNECT frame's host header.
    expect(() => new StompConnection({ uri: 'tcp://h/prod' })).toThrow(expect.objectContaining({ code: 'ERR_BROKER_URI' }));
  });
});
