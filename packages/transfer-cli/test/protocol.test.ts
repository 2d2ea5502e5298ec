import { brokerProtocol } from '../src/protocol';

describe('transfer-cli protocol', () => {
  test('protocol - explicit schemes decide whatever the command', () => {
    for (const fallback of ['stomp', 'amqp'] as const) {
      expect(brokerProtocol('stomp://mq:61613', fallback)).toBe('stomp');
      expect(brokerProtocol('stomp+ssl://mq:61614', fallback)).toBe('stomp');
      expect(brokerProtocol('stomp+nio://mq:61613', fallback)).toBe('stomp');
      expect(brokerProtocol('amqp://mq:5672', fallback)).toBe('amqp');
      expect(brokerProtocol('AMQPS://mq:5671/vhost', fallback)).toBe('amqp');
    }
  });

  test('protocol - tcp://, ssl:// and file: follow the command (stompclt STOMP, amqpclt AMQP)', () => {
    for (const uri of ['tcp://mq:61613', 'ssl://mq:61614', 'file:/etc/brokers.txt']) {
      expect(brokerProtocol(uri, 'stomp')).toBe('stomp');
      expect(brokerProtocol(uri, 'amqp')).toBe('amqp');
    }
  });

  test('protocol - a failover list takes its members protocol and refuses a mix', () => {
    expect(brokerProtocol('failover:(amqp://a:5672,amqp://b:5672)?randomize=false', 'stomp')).toBe('amqp');
    expect(brokerProtocol('failover:(tcp://a:61613,stomp://b:61613)', 'stomp')).toBe('stomp');
    expect(brokerProtocol('failover:tcp://a:5672,tcp://b:5672', 'amqp')).toBe('amqp');
    expect(() => brokerProtocol('failover:(amqp://a:5672,stomp://b:61613)', 'stomp', 'outgoing-broker-uri')).toThrow(
      /outgoing-broker-uri: a failover list mixes STOMP and AMQP/,
    );
  });
});
