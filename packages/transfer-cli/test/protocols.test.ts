import { AMQP_PROTOCOL } from '@msgbricks/amqp';
import { STOMP_PROTOCOL } from '@msgbricks/stomp';
import { brokerProtocol, checkBrokerUri, PROTOCOLS } from '../src/protocols';

const STOMP = STOMP_PROTOCOL;
const AMQP = AMQP_PROTOCOL;

describe('transfer-cli protocols', () => {
  test('protocols - a scheme only one protocol has decides, whatever the command', () => {
    for (const fallback of [STOMP, AMQP]) {
      expect(brokerProtocol('stomp://mq:61613', fallback)).toBe(STOMP);
      expect(brokerProtocol('stomp+ssl://mq:61614', fallback)).toBe(STOMP);
      expect(brokerProtocol('stomp+nio://mq:61613', fallback)).toBe(STOMP);
      expect(brokerProtocol('amqp://mq:5672', fallback)).toBe(AMQP);
      expect(brokerProtocol('AMQPS://mq:5671/vhost', fallback)).toBe(AMQP);
    }
  });

  test('protocols - tcp://, ssl:// and file: follow the command (stompclt STOMP, amqpclt AMQP)', () => {
    for (const uri of ['tcp://mq:61613', 'ssl://mq:61614', 'file:/etc/brokers.txt']) {
      expect(brokerProtocol(uri, STOMP)).toBe(STOMP);
      expect(brokerProtocol(uri, AMQP)).toBe(AMQP);
    }
  });

  test('protocols - a failover list takes its members protocol and refuses a mix', () => {
    expect(brokerProtocol('failover:(amqp://a:5672,amqp://b:5672)?randomize=false', STOMP)).toBe(AMQP);
    expect(brokerProtocol('failover:(tcp://a:61613,stomp://b:61613)', STOMP)).toBe(STOMP);
    expect(brokerProtocol('failover:tcp://a:5672,tcp://b:5672', AMQP)).toBe(AMQP);
    expect(() => brokerProtocol('failover:(amqp://a:5672,stomp://b:61613)', STOMP)).toThrow(
      /a failover list mixes AMQP 1.0 and STOMP brokers/,
    );
  });

  test('protocols - the option check parses a URI as its protocol will: udp:// is no protocol of ours', () => {
    expect(() => checkBrokerUri('stomp+nio://mq', AMQP)).not.toThrow();
    expect(() => checkBrokerUri('amqps://mq/prod', STOMP)).not.toThrow();
    expect(() => checkBrokerUri('udp://mq:61613', STOMP)).toThrow(
      expect.objectContaining({ code: 'ERR_BROKER_URI', message: expect.stringMatching(/^unsupported scheme "udp"/) }),
    );
    expect(() => checkBrokerUri('tcp://mq/vhost', STOMP)).toThrow(/has a path/);
    expect(() => checkBrokerUri('tcp://mq/vhost', AMQP)).not.toThrow();
  });

  test('protocols - every registered protocol is a descriptor with its own schemes', () => {
    expect(PROTOCOLS.map((p) => p.name)).toEqual(['STOMP', 'AMQP 1.0']);
    for (const p of PROTOCOLS) {
      expect(Object.keys(p.schemes).length).toBeGreaterThan(0);
      expect(typeof p.incoming).toBe('function');
      expect(typeof p.outgoing).toBe('function');
    }
  });
});
