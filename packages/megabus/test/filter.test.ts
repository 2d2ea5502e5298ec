import * as fs from 'node:fs';
import { type ConfigProblem, formatProblem, readTree } from '@msgbricks/config-general';
import {
  buildFilter,
  Consumer,
  describeConfig,
  expandPattern,
  type FilterConfig,
  filterSelector,
  loadConfig,
  parseFilterKeys,
} from '@msgbricks/megabus';
import { useTempDir } from '@msgbricks/test-support';
import { problemsOf, writer } from './helpers/config';

const dir = useTempDir('megabus-filter-');

const write = writer(() => dir.path);

const GUEST = ['server: mb.example.org', 'auth_method: password', 'user: u', 'password: p'];
const filterOf = (f: FilterConfig) => buildFilter(f);
const pick = (f: FilterConfig, hosts: Record<string, string>[]) => hosts.filter((h) => filterOf(f).matches({ header: h }));

describe('megabus filter', () => {
  test('filter - the keys in YAML, JSON and Apache style give the same filter, shown by describeConfig', () => {
    const yaml = write(
      'a.yaml',
      [
        ...GUEST,
        `selector: "state = 'draining' AND prio > 3"`,
        'hostgroup_selector: eos/%',
        'host_selector: disk_0%',
        'use_broker_filtering: yes',
        '',
      ].join('\n'),
    );
    const json = write(
      'b.json',
      JSON.stringify({
        server: 'mb.example.org',
        auth_method: 'password',
        user: 'u',
        password: 'p',
        selector: "state = 'draining' AND prio > 3",
        hostgroup_selector: 'eos/%',
        host_selector: 'disk_0%',
        use_broker_filtering: true,
      }),
    );
    const conf = write(
      'c.conf',
      [
        ...GUEST.map((l) => l.replace(': ', ' ')),
        `selector state = 'draining' AND prio > 3`,
        'hostgroup_selector eos/%',
        'host_selector disk_0%',
        'use_broker_filtering on',
        '',
      ].join('\n'),
    );
    const expected: FilterConfig = {
      selector: "state = 'draining' AND prio > 3",
      hostgroupSelector: 'eos/%',
      hostSelector: 'disk_0%',
      useBrokerFiltering: true,
    };
    for (const file of [yaml, json, conf]) expect(loadConfig({ file }).filter).toEqual(expected);
    expect(describeConfig(loadConfig({ file: yaml }))).toMatchObject({
      selector: "state = 'draining' AND prio > 3",
      hostgroup_selector: 'eos/%',
      host_selector: 'disk_0%',
      use_broker_filtering: true,
    });
    // None given: no filter, and the default shown.
    const none = loadConfig({ file: write('d.yaml', `${GUEST.join('\n')}\n`) });
    expect(none.filter).toEqual({ useBrokerFiltering: false });
    expect(describeConfig(none)).toMatchObject({ use_broker_filtering: false });
    expect(describeConfig(none)).not.toHaveProperty('selector');
  });

  test('filter - a bad selector is one more FILE:LINE: key problem, with its column, among all the others', () => {
    const file = write(
      'bad.yaml',
      [
        ...GUEST, // 1-4
        'colour: blue', // 5
        'selector: "state = NULL"', // 6
        'use_broker_filtering: maybe', // 7
        'hostgroup_selector: ""', // 8
        'host_selector:', // 9
        '  a: b', // 10
        'port: 0', // 11
        '',
      ].join('\n'),
    );
    expect(problemsOf(() => loadConfig({ file }))).toEqual([
      `${file}:5: colour: unknown key`,
      `${file}:6: selector: invalid selector at column 9: "NULL": nothing can be compared with NULL with = or <> (use IS NULL)`,
      `${file}:7: use_broker_filtering: expected a boolean (true/false, yes/no, on/off, 1/0), got "maybe"`,
      `${file}:8: hostgroup_selector: expected a string, got ""`,
      `${file}:9: host_selector: expected a value, not a block`,
      `${file}:11: port: expected an integer from 1 to 65535, got 0`,
    ]);
  });

  test('filter - Apache style: a syntax error names its column, a repeated key is refused, broker filtering needs a selector', () => {
    const bad = write(
      'bad.conf',
      [...GUEST.map((l) => l.replace(': ', ' ')), "selector state = 'a' AND", "selector x = 'b'", ''].join('\n'),
    );
    const problems = problemsOf(() => loadConfig({ file: bad }));
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(new RegExp(`^${bad}:5: selector: invalid selector at column 16: `));
    expect(problems[1]).toBe(`${bad}:6: selector: given more than once (first at ${bad}:5)`);
    const alone = write('alone.conf', [...GUEST.map((l) => l.replace(': ', ' ')), 'use_broker_filtering true', ''].join('\n'));
    expect(problemsOf(() => loadConfig({ file: alone }))).toEqual([
      `${alone}:5: use_broker_filtering: needs selector, hostgroup_selector or host_selector`,
    ]);
  });

  test('filter - parseFilterKeys reads any block (a plugin), leaves its other keys to the caller, names keys by prefix', () => {
    const file = write(
      'plugins.yaml',
      ['plugins:', '  roger:', '    destination: /topic/roger', '    host_selector: "disk%"', "    selector: 'x ='", ''].join(
        '\n',
      ),
    );
    const tree = readTree(file, (f) => fs.readFileSync(f, 'utf8'));
    if (tree.kind !== 'block') throw new Error('not a block');
    const plugins = tree.entries[0]?.[1];
    const roger = plugins?.kind === 'block' ? plugins.entries[0]?.[1] : undefined;
    if (roger === undefined) throw new Error('no plugin');
    const problems: ConfigProblem[] = [];
    const f = parseFilterKeys(roger, 'plugins.roger.', problems);
    expect(problems.map(formatProblem)).toEqual([
      expect.stringMatching(new RegExp(`^${file}:5: plugins\\.roger\\.selector: invalid selector at column 4: expected `)),
    ]);
    expect(f).toEqual({ hostSelector: 'disk%', useBrokerFiltering: false });
  });

  test('filter - a shortcut expands to LIKE: % is the only wildcard, _ and \\ are escaped, quotes doubled', () => {
    expect(expandPattern('hostgroup', 'eos/%')).toBe("hostgroup LIKE 'eos/%'");
    expect(expandPattern('host', 'disk_0%')).toBe("host LIKE 'disk\\_0%' ESCAPE '\\'");
    expect(expandPattern('host', "it's\\x")).toBe("host LIKE 'it''s\\\\x' ESCAPE '\\'");
    const hosts: Record<string, string>[] = [
      { host: 'disk_01' },
      { host: 'diskX01' },
      { host: 'disk_0' },
      { host: 'DISK_01' },
      { host: 'a\\b' },
      { host: "it's" },
      {},
    ];
    expect(pick({ hostSelector: 'disk_0%', useBrokerFiltering: false }, hosts)).toEqual([
      { host: 'disk_01' },
      { host: 'disk_0' },
    ]);
    expect(pick({ hostSelector: 'disk_01', useBrokerFiltering: false }, hosts)).toEqual([{ host: 'disk_01' }]);
    expect(pick({ hostSelector: '%\\%', useBrokerFiltering: false }, hosts)).toEqual([{ host: 'a\\b' }]);
    expect(pick({ hostSelector: "it's", useBrokerFiltering: false }, hosts)).toEqual([{ host: "it's" }]);
    expect(pick({ hostSelector: '%', useBrokerFiltering: false }, hosts)).toHaveLength(6);
    expect(
      pick({ hostgroupSelector: 'eos/%', useBrokerFiltering: false }, [
        { hostgroup: 'eos/disk' },
        { hostgroup: 'eos' },
        { host: 'eos/x' },
      ]),
    ).toEqual([{ hostgroup: 'eos/disk' }]);
  });

  test('filter - several keys combine with AND, each part kept apart (NOT, a trailing --), one selector for the broker', () => {
    const f: FilterConfig = {
      selector: "NOT x = 'a' -- c",
      hostgroupSelector: 'eos/%',
      hostSelector: 'disk%',
      useBrokerFiltering: true,
    };
    expect(filterSelector(f)).toBe("(NOT x = 'a' -- c) AND (hostgroup LIKE 'eos/%') AND (host LIKE 'disk%')");
    const built = buildFilter(f);
    expect(built.brokerSelector).toBe(filterSelector(f));
    const parts = [
      buildFilter({ selector: f.selector, useBrokerFiltering: false }),
      buildFilter({ hostgroupSelector: f.hostgroupSelector, useBrokerFiltering: false }),
      buildFilter({ hostSelector: f.hostSelector, useBrokerFiltering: false }),
    ];
    let selected = 0;
    for (const x of [undefined, 'a', 'b'])
      for (const c of [undefined, '1'])
        for (const hostgroup of [undefined, 'eos/a', 'castor'])
          for (const host of [undefined, 'disk1', 'lb1']) {
            const header: Record<string, string> = {};
            for (const [k, v] of Object.entries({ x, c, hostgroup, host })) if (v !== undefined) header[k] = v;
            const all = parts.every((p) => p.matches({ header }));
            expect([header, built.matches({ header })]).toEqual([header, all]);
            if (all) selected++;
          }
    // The table is not trivially all or nothing.
    expect(selected).toBeGreaterThan(0);
    expect(selected).toBeLessThan(54);
    // One part alone goes to the broker as given; without use_broker_filtering nothing goes.
    expect(buildFilter({ selector: 'x > 1', useBrokerFiltering: true }).brokerSelector).toBe('x > 1');
    expect(buildFilter({ selector: 'x > 1', useBrokerFiltering: false }).brokerSelector).toBeUndefined();
    const none = buildFilter({ useBrokerFiltering: false });
    expect([none.selector, none.brokerSelector, none.matches({ header: {} })]).toEqual([undefined, undefined, true]);
  });

  test("filter - a Consumer takes the configuration's filter, or the one it is given (a plugin's)", () => {
    const file = write(
      'consumer.yaml',
      [...GUEST, 'destination: /queue/q', 'host_selector: disk%', 'use_broker_filtering: on', ''].join('\n'),
    );
    const c = new Consumer({ config: file, handler: () => undefined });
    expect(c.selection.brokerSelector).toBe("host LIKE 'disk%'");
    expect(c.filtered).toBe(0);
    const p = new Consumer({
      config: file,
      handler: () => undefined,
      filtering: { selector: "s = 'x'", useBrokerFiltering: false },
    });
    expect(p.selection.brokerSelector).toBeUndefined();
    expect(p.selection.matches({ header: { s: 'x', host: 'lb1' } })).toBe(true);
  });
});
