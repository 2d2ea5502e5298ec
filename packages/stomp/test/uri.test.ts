import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BrokerUriError, parseCredential, RejectedError } from '@msgbricks/agent';
import { Message } from '@msgbricks/message';
import {
  detectBrokerType,
  frameToMessage,
  messageToFrame,
  parseStompUri as parseBrokerUri,
  prefetchHeader,
} from '@msgbricks/stomp';
import { tempDir } from '@msgbricks/test-support';

describe('parseBrokerUri', () => {
  it('parses plain and TLS URIs with a single attempt', () => {
    expect(parseBrokerUri('tcp://broker.example:61613')).toEqual({
      servers: [{ host: 'broker.example', port: 61613, ssl: false, uri: 'tcp://broker.example:61613' }],
      randomize: false,
      initialReconnectDelay: 10,
      maxReconnectDelay: 30000,
      backOffMultiplier: 2,
      useExponentialBackOff: true,
      maxReconnectAttempts: 0,
      failover: false,
    });
    expect(parseBrokerUri('stomp://h:1').servers[0]).toMatchObject({ host: 'h', port: 1, ssl: false });
    expect(parseBrokerUri('ssl://h:61614').servers[0]).toMatchObject({ ssl: true, port: 61614 });
    expect(parseBrokerUri('stomp+ssl://h:9').servers[0]).toMatchObject({ ssl: true, port: 9 });
    expect(parseBrokerUri('stomp://h').servers[0]?.port).toBe(61613);
    expect(parseBrokerUri('stomp+ssl://h').servers[0]?.port).toBe(61614);
    expect(parseBrokerUri('tcp://[::1]:5').servers[0]).toMatchObject({ host: '::1', port: 5 });
  });

  it('parses failover URIs with stompclt defaults and options', () => {
    const d = parseBrokerUri('failover:(tcp://a:1,ssl://b:2)');
    expect(d.servers.map((s) => [s.host, s.port, s.ssl])).toEqual([
      ['a', 1, false],
      ['b', 2, true],
    ]);
    expect(d).toMatchObject({
      randomize: true,
      initialReconnectDelay: 10,
      maxReconnectDelay: 30000,
      backOffMultiplier: 2,
      maxReconnectAttempts: -1,
      failover: true,
    });
    const o = parseBrokerUri(
      'failover:(tcp://a:1,stomp+ssl://b:2)?randomize=false&initialReconnectDelay=100&maxReconnectDelay=5000&backOffMultiplier=3&maxReconnectAttempts=7&unknown=1',
    );
    expect(o).toMatchObject({
      randomize: false,
      initialReconnectDelay: 100,
      maxReconnectDelay: 5000,
      backOffMultiplier: 3,
      maxReconnectAttempts: 7,
    });
    expect(parseBrokerUri('failover:tcp://a:1').servers).toHaveLength(1);
  });

  it('reads file: URIs', () => {
    const dir = tempDir('stomp-uri-');
    writeFileSync(join(dir, 'one'), '# comment\nfailover:(tcp://a:1,tcp://b:2)?randomize=false\n');
    writeFileSync(join(dir, 'many'), 'tcp://a:1 # first\n\nssl://b:2\n');
    expect(parseBrokerUri(`file:${join(dir, 'one')}`)).toMatchObject({ randomize: false, failover: true });
    expect(parseBrokerUri(`file:${join(dir, 'many')}`).servers.map((s) => s.uri)).toEqual(['tcp://a:1', 'ssl://b:2']);
    expect(() => parseBrokerUri(`file:${join(dir, 'missing')}`)).toThrow(/cannot read broker URI file/);
  });

  it('gives clear errors', () => {
    expect(() => parseBrokerUri('')).toThrow(BrokerUriError);
    expect(() => parseBrokerUri('http://h:1')).toThrow(/unsupported scheme "http"/);
    expect(() => parseBrokerUri('tcp://h:99999')).toThrow(/invalid port 99999/);
    expect(() => parseBrokerUri('h:61613')).toThrow(/expected stomp:\/\/host\[:port\]/);
    expect(() => parseBrokerUri('failover:()')).toThrow(/lists no broker/);
    expect(() => parseBrokerUri('failover:(tcp://a:1')).toThrow(/invalid failover URI/);
    expect(() => parseBrokerUri('failover:(tcp://a:1)?maxReconnectDelay=soon')).toThrow(/maxReconnectDelay=soon/);
    expect(() => parseBrokerUri('failover:(tcp://a:1)?randomize=maybe')).toThrow(/randomize=maybe/);
    expect(() => parseBrokerUri('failover:(tcp://a:1,ftp://b:2)')).toThrow(/unsupported scheme "ftp".*in failover/);
  });
});

describe('broker types, prefetch and credentials', () => {
  it('detects the broker type from CONNECTED', () => {
    expect(detectBrokerType({ server: 'ActiveMQ/5.17.2' })).toBe('ActiveMQ');
    expect(detectBrokerType({ server: 'ActiveMQ-Artemis/2.31.0 ActiveMQ Artemis Messaging Engine' })).toBe('Artemis');
    expect(detectBrokerType({ server: 'apache-apollo/1.7' })).toBe('Apollo');
    expect(detectBrokerType({ session: 'apollo-123' })).toBe('Apollo');
    expect(detectBrokerType({ server: 'RabbitMQ/3.10.8' })).toBe('RabbitMQ');
    expect(detectBrokerType({ session: 'session-0123456789abcd' })).toBe('RabbitMQ');
    expect(detectBrokerType({ server: 'other/1' })).toBe('UNKNOWN');
  });

  it('translates the prefetch per broker type', () => {
    expect(prefetchHeader('ActiveMQ')).toBe('activemq.prefetchSize');
    expect(prefetchHeader('RabbitMQ')).toBe('prefetch-count');
    expect(prefetchHeader('Artemis')).toBe('consumer-window-size');
    expect(prefetchHeader('Apollo')).toBe('credit');
    expect(() => prefetchHeader('UNKNOWN')).toThrow(/type UNKNOWN/);
  });

  it('parses Authen::Credential strings', () => {
    expect(parseCredential('plain name=guest pass=p%20w')).toEqual({ scheme: 'plain', name: 'guest', pass: 'p w' });
    expect(parseCredential('none')).toEqual({ scheme: 'none' });
    expect(() => parseCredential('kerberos x=1')).toThrow(/unknown credential scheme/);
    expect(() => parseCredential('plain name')).toThrow(/invalid credential field/);
  });
});

describe('messages and frames', () => {
  it('turns a message into a SEND frame (demessagify)', () => {
    const text = new Message({
      header: {
        destination: '/queue/q',
        receipt: 'x',
        'content-length': '9',
        transaction: 't',
        a: 'b',
        // One delivery's headers, from a message received over STOMP: never sent on.
        subscription: 'sub-0',
        ack: 'T_sub-0@@session@@1',
        redelivered: 'false',
        'message-id': 'T_sub-0@@session@@1',
      },
      body: 'héllo',
    });
    expect(messageToFrame(text)).toEqual({
      headers: { destination: '/queue/q', a: 'b', 'content-type': 'text/plain; charset=UTF-8' },
      body: Buffer.from('héllo'),
    });
    const bin = new Message({ header: { persistent: 'true' }, body: Buffer.from([0, 255]) });
    expect(messageToFrame(bin, { destination: '/queue/d' })).toEqual({
      headers: { persistent: 'true', destination: '/queue/d' },
      body: Buffer.from([0, 255]),
    });
    expect(messageToFrame(new Message({ body: 'x' }), { destination: '/queue/d', persistent: true }).headers.persistent).toBe(
      'true',
    );
    expect(() => messageToFrame(new Message({ body: 'x' }))).toThrow(RejectedError);
    expect(() =>
      messageToFrame(new Message({ header: { 'content-type': 'text/plain' }, body: Buffer.from([1]) }), { destination: 'q' }),
    ).toThrow(/binary body with the text content-type/);
  });

  it("drops the transport headers of a MESSAGE frame: the sender's receipt is not kept in the message", () => {
    const m = frameToMessage({ receipt: 'r-7', 'content-length': '1', 'message-id': 'm1', subject: 's' }, Buffer.from('x'));
    expect(m.header).toEqual({ 'message-id': 'm1', subject: 's' });
  });

  it('turns a MESSAGE frame into a message (messagify)', () => {
    const t = frameToMessage(
      { 'content-type': 'text/plain', 'content-length': '2', 'message-id': 'm1', destination: '/queue/q' },
      Buffer.from('hi'),
    );
    expect(t.text).toBe(true);
    expect(t.body).toBe('hi');
    expect(t.header).toEqual({ 'content-type': 'text/plain', 'message-id': 'm1', destination: '/queue/q' });
    expect(frameToMessage({ 'content-type': 'application/json; charset=utf-8' }, Buffer.from('{}')).text).toBe(true);
    expect(frameToMessage({ 'content-type': 'text/plain; format=x' }, Buffer.from('x')).text).toBe(false);
    expect(frameToMessage({}, Buffer.from([0, 255])).body).toEqual(Buffer.from([0, 255]));
    expect(frameToMessage({ 'content-type': 'text/plain' }, Buffer.from([0xff])).text).toBe(false);
  });
});
