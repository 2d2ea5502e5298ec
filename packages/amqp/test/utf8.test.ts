import { RejectedError } from '@msgbricks/agent';
import { Message } from '@msgbricks/message';
import { messageToAmqp } from '../src/mapping';

describe('amqp utf-8', () => {
  test('amqp utf-8 - a lone surrogate in a header or a text body is refused, never sent as U+FFFD', () => {
    for (const m of [
      new Message({ header: { destination: '/queue/a', 'x-id': 'x\ud800' }, body: 'b' }),
      new Message({ header: { destination: '/queue/a' }, body: 'b\udc00' }),
    ]) {
      expect(() => messageToAmqp(m)).toThrow(RejectedError);
      expect(() => messageToAmqp(m)).toThrow(/lone surrogate: not encodable as UTF-8/);
    }
  });
});
