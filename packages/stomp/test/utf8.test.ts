import { RejectedError } from '@msgbricks/agent';
import { Message } from '@msgbricks/message';
import { messageToFrame } from '../src/modules';

describe('stomp utf-8', () => {
  test('stomp utf-8 - a lone surrogate in a header or a text body is refused, never sent as U+FFFD', () => {
    // Was: written through Buffer.write(..., 'utf8'), which replaces it silently.
    for (const m of [
      new Message({ header: { destination: '/queue/a', id: 'x\ud800' }, body: 'b' }),
      new Message({ header: { destination: '/queue/a' }, body: 'b\udc00' }),
    ]) {
      expect(() => messageToFrame(m)).toThrow(RejectedError);
      expect(() => messageToFrame(m)).toThrow(/lone surrogate: not encodable as UTF-8/);
    }
    expect(messageToFrame(new Message({ header: { destination: '/queue/a', id: 'x\u{1f600}' }, body: 'b' })).headers.id).toBe(
      'x\u{1f600}',
    );
  });
});
