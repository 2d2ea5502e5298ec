import * as fs from 'node:fs';
import { join } from 'node:path';
import { ChangeState, fieldValue, ON_CHANGE_FILE } from '@msgbricks/megabus';
import { Message } from '@msgbricks/message';
import { layout, useTempDir } from '@msgbricks/test-support';

const dir = useTempDir('megabus-onchange-');

const later = () => new Promise((r) => setTimeout(r, 30));

describe('on_change', () => {
  test('on_change - the key and the field as the schedules read them: a header, or body.PATH to a string, number or boolean', () => {
    const m = new Message({ header: { host: 'disk42' }, body: '{"state":"draining","n":5,"a":{"x":true},"o":{"k":1},"z":null}' });
    expect(fieldValue(m, 'host')).toBe('disk42');
    expect(fieldValue(m, 'state')).toBeUndefined();
    expect(fieldValue(m, 'body.state')).toBe('draining');
    expect(fieldValue(m, 'body.n')).toBe('5');
    expect(fieldValue(m, 'body.a.x')).toBe('true');
    // Not a value to compare: as absent (the message is ignored by on_change).
    expect(fieldValue(m, 'body.o')).toBeUndefined();
    expect(fieldValue(m, 'body.z')).toBeUndefined();
    expect(fieldValue(m, 'body.missing')).toBeUndefined();
    expect(fieldValue(new Message({ body: 'not json' }), 'body.state')).toBeUndefined();
    expect(fieldValue(new Message({ body: Buffer.from('{"s":"b"}') }), 'body.s')).toBe('b');
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

  test('on_change - a write that fails leaves the old value: the retry acts again, and the value is on disk once it ran', async () => {
    const file = join(dir.path, ON_CHANGE_FILE);
    fs.writeFileSync(file, '{"version":1,"values":{"a":"x"}}\n');
    const state = await ChangeState.open(dir.path);
    // The temporary file cannot be opened for writing: a directory in its place.
    fs.mkdirSync(`${file}.tmp`);
    let acted = 0;
    const act = async () => {
      acted++;
    };
    await expect(state.change('a', 'y', act)).rejects.toMatchObject({ code: 'ERR_MEGABUS_STATE' });
    expect(state.get('a')).toBe('x');
    expect(fs.readFileSync(file, 'utf8')).toBe('{"version":1,"values":{"a":"x"}}\n');
    fs.rmdirSync(`${file}.tmp`);
    expect(await state.change('a', 'y', act)).toBe(true);
    expect(acted).toBe(2);
    expect(fs.readFileSync(file, 'utf8')).toBe('{"version":1,"values":{"a":"y"}}\n');
    expect(layout(dir.path)).toEqual([ON_CHANGE_FILE]);
  });
});
