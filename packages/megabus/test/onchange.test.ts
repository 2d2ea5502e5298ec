import * as fs from 'node:fs';
import { join } from 'node:path';
import { ChangeState, fieldOf, ON_CHANGE_FILE } from '@msgbricks/megabus';
import { Message } from '@msgbricks/message';
import { layout, useTempDir } from '@msgbricks/test-support';

const dir = useTempDir('megabus-onchange-');

const later = () => new Promise((r) => setTimeout(r, 30));

describe('on_change', () => {
  test('on_change - fieldOf: a header field, or body.PATH into a JSON body (objects and arrays), else undefined', () => {
    const m = new Message({ header: { host: 'disk42' }, body: '{"state":"draining","n":5,"a":[{"x":true}],"o":{"k":1}}' });
    expect(fieldOf(m, 'host')).toBe('disk42');
    expect(fieldOf(m, 'state')).toBeUndefined();
    expect(fieldOf(m, 'body.state')).toBe('draining');
    expect(fieldOf(m, 'body.n')).toBe('5');
    expect(fieldOf(m, 'body.a.0.x')).toBe('true');
    expect(fieldOf(m, 'body.o')).toBe('{"k":1}');
    expect(fieldOf(m, 'body.missing')).toBeUndefined();
    expect(fieldOf(m, 'body.state.length')).toBeUndefined();
    expect(fieldOf(new Message({ body: 'not json' }), 'body.state')).toBeUndefined();
    expect(fieldOf(new Message({ body: Buffer.from('{"s":"b"}') }), 'body.s')).toBe('b');
  });

  test('on_change - one key at a time, keys in parallel; the value written once the action succeeded, a failure leaves it', async () => {
    const state = await ChangeState.open(dir.path);
    const log: string[] = [];
    const act =
      (what: string, fail = false) =>
      async () => {
        log.push(`start ${what}`);
        await later();
        log.push(`end ${what}`);
        if (fail) throw new Error(`${what} failed`);
      };
    const results = await Promise.allSettled([
      state.change('a', 'draining', act('a1')),
      state.change('a', 'draining', act('a2')),
      state.change('b', 'production', act('b1', true)),
    ]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([
      true,
      false,
      'b1 failed',
    ]);
    // a2 waited for a1 (and then found the value unchanged); b1 ran beside a1.
    expect(log).toEqual(['start a1', 'start b1', 'end a1', 'end b1']);
    expect(state.get('a')).toBe('draining');
    expect(state.get('b')).toBeUndefined();
    const file = join(dir.path, ON_CHANGE_FILE);
    expect(fs.readFileSync(file, 'utf8')).toBe('{"version":1,"values":{"a":"draining"}}\n');
    expect(layout(dir.path)).toEqual([ON_CHANGE_FILE]);
  });

  test('on_change - a temporary file left by a crash is neither read nor in the way', async () => {
    fs.writeFileSync(join(dir.path, ON_CHANGE_FILE), '{"version":1,"values":{"a":"x"}}\n');
    // A crash between the write of the new file and its rename: the old one is what counts.
    fs.writeFileSync(join(dir.path, `${ON_CHANGE_FILE}.tmp`), '{"version":1,"values":{"a":"y"');
    const state = await ChangeState.open(dir.path);
    expect(state.get('a')).toBe('x');
    expect(await state.change('a', 'y', async () => undefined)).toBe(true);
    expect(layout(dir.path)).toEqual([ON_CHANGE_FILE]);
    expect((await ChangeState.open(dir.path)).get('a')).toBe('y');
  });
});
