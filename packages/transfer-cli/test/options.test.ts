// stompclt's options: the configurations of its manual (sending, receiving, shoveling, tapping) in
// Config::General, JSON and YAML; command-line overrides; every problem reported at once.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, loadOptions, OPTION_SCHEMA } from '../src';

let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'msgbricks-options-'));
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

/** The ConfigError message of loadOptions, with the temporary directory shown as DIR. */
function problems(input: Parameters<typeof loadOptions>[0]): string[] {
  try {
    loadOptions(input);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('ERR_CONFIG');
    return (err as ConfigError).message.split(dir).join('DIR').split('\n');
  }
  throw new Error('no error');
}

const SENDER = `# SENDING: send the messages spooled in a queue to a broker
<stompclt>
  <incoming-queue>
    path /var/spool/sender
    type DQS
  </incoming-queue>
  <outgoing-broker>
    uri "stomp+ssl://broker.example.org:6162"
    <auth>
      scheme plain
      name producer
      pass "secret word"
    </auth>
  </outgoing-broker>
  reliable yes
  remove = 1
  callback-code <<EOF
    $hdr{destination} = "/queue/test";
    $hdr{persistent} = "true";
    EOF
</stompclt>
`;

const SENDER_OPTIONS = {
  'incoming-queue': { type: 'DQS', path: '/var/spool/sender' },
  'outgoing-broker-uri': 'stomp+ssl://broker.example.org:6162',
  'outgoing-broker-auth': [{ scheme: 'plain', name: 'producer', pass: 'secret word' }],
  reliable: true,
  remove: true,
  'callback-code': '$hdr{destination} = "/queue/test";\n$hdr{persistent} = "true";',
};

describe('config - the manual configurations', () => {
  test('config - SENDING: queue to broker with <outgoing-broker>, <auth> and <incoming-queue>', () => {
    const { options, sources } = loadOptions({ configFile: file('sender.conf', SENDER) });
    expect(options).toMatchObject(SENDER_OPTIONS);
    expect(options).toMatchObject({
      'incoming-broker-auth': [],
      subscribe: [],
      loop: false,
      daemon: false,
      'timeout-client': 40,
      'timeout-server': 10,
      'timeout-flush': 60,
      'timeout-disconnect': 60,
      debug: 0,
      'log-format': 'text',
    });
    expect(options.unsubscribe).toBeUndefined();
    expect(options.prefetch).toBeUndefined();
    expect(sources['outgoing-broker-uri']).toBe(`${dir}/sender.conf:8`);
    expect(sources['outgoing-broker-auth']).toBe(`${dir}/sender.conf:9`);
    expect(sources['callback-code']).toBe(`${dir}/sender.conf:17`);
  });

  test('config - RECEIVING: broker to queue with two <subscribe> blocks', () => {
    const conf = file(
      'receiver.conf',
      `<incoming>
  <broker>
    uri "failover:(tcp://b1:61613,tcp://b2:61613)?randomize=false"
    auth "x509 cert=/etc/grid-security/cert.pem key=/etc/grid-security/key.pem"
    type ActiveMQ
  </broker>
</incoming>
<subscribe>
  destination /queue/app.a
  id a
</subscribe>
<subscribe>
  destination /topic/app.b
  selector "color = 'red'"
</subscribe>
outgoing-queue "path=/var/spool/receiver type=DQN"
reliable true
count 1000
heart-beat on
timeout-inactivity 2.5
`,
    );
    const { options, sources } = loadOptions({ configFile: conf });
    expect(options).toMatchObject({
      'incoming-broker-uri': 'failover:(tcp://b1:61613,tcp://b2:61613)?randomize=false',
      'incoming-broker-auth': [{ scheme: 'x509', cert: '/etc/grid-security/cert.pem', key: '/etc/grid-security/key.pem' }],
      'incoming-broker-type': 'ActiveMQ',
      subscribe: [
        { destination: '/queue/app.a', id: 'a' },
        { destination: '/topic/app.b', selector: "color = 'red'" },
      ],
      'outgoing-queue': { type: 'DQN', path: '/var/spool/receiver' },
      reliable: true,
      count: 1000,
      'heart-beat': true,
      'timeout-inactivity': 2.5,
      prefetch: 100,
    });
    expect(sources.prefetch).toBe('default');
  });

  test('config - SHOVELING: broker to broker, flat keys and k=v strings', () => {
    const conf = file(
      'shovel.conf',
      `incoming-broker-uri tcp://source:61613
incoming-broker-auth plain name=reader pass=r%20w
incoming-broker-connect "host=/ version=1.2"
subscribe destination=/queue/in persistent=true
unsubscribe
outgoing-broker-uri = ssl://target:61614
outgoing-broker-sockopts SSL_ca_path=/etc/grid-security/certificates
outgoing-broker-stomp-debug "connection io"
callback-code <<EOF
delete($hdr{"message-id"});
delete($hdr{timestamp});
EOF
window 500
prefetch 50
statistics 1
`,
    );
    const { options } = loadOptions({ configFile: conf });
    expect(options).toMatchObject({
      'incoming-broker-auth': [{ scheme: 'plain', name: 'reader', pass: 'r w' }],
      'incoming-broker-connect': { host: '/', version: '1.2' },
      subscribe: [{ destination: '/queue/in', persistent: 'true' }],
      unsubscribe: [{}],
      'outgoing-broker-uri': 'ssl://target:61614',
      'outgoing-broker-sockopts': { SSL_ca_path: '/etc/grid-security/certificates' },
      'outgoing-broker-stomp-debug': 'connection io',
      'callback-code': 'delete($hdr{"message-id"});\ndelete($hdr{timestamp});',
      window: 500,
      prefetch: 50,
      statistics: true,
    });
  });

  test('config - TAPPING: broker to a NULL queue with callback code in a heredoc and callback data', () => {
    const conf = file(
      'tap.conf',
      `incoming-broker-uri stomp://broker:61613
<subscribe>
  destination /topic/\\#
</subscribe>
<outgoing-queue>
  type NULL
</outgoing-queue>
<callback>
  code <<EOF
  printf("%s %d\\n", $hdr{destination}, length($bdy));
  return($msg);
  EOF
  <data>
    verbose 1
  </data>
</callback>
debug 2
`,
    );
    const { options } = loadOptions({ configFile: conf });
    expect(options['callback-code']).toBe('printf("%s %d\\n", $hdr{destination}, length($bdy));\nreturn($msg);');
    expect(options['callback-data']).toEqual({ verbose: '1' });
    expect(options['outgoing-queue']).toEqual({ type: 'NULL' });
    expect(options.subscribe).toEqual([{ destination: '/topic/#' }]);
    expect(options.debug).toBe(2);
  });
});

describe('config - JSON and YAML', () => {
  const json = {
    stompclt: {
      incoming: { queue: { path: '/var/spool/sender', type: 'dqs' } },
      'outgoing-broker': {
        uri: 'stomp+ssl://broker.example.org:6162',
        auth: { scheme: 'plain', name: 'producer', pass: 'secret word' },
      },
      reliable: true,
      remove: 1,
      'callback-code': '$hdr{destination} = "/queue/test";\n$hdr{persistent} = "true";',
    },
  };

  test('config - a JSON file gives the same options as the Config::General one', () => {
    const fromConf = loadOptions({ configFile: file('sender.conf', SENDER) }).options;
    const fromJson = loadOptions({ configFile: file('sender.json', JSON.stringify(json, null, 2)) }).options;
    expect(fromJson).toEqual(fromConf);
    expect(fromJson).toMatchObject(SENDER_OPTIONS);
  });

  test('config - a YAML file gives the same options, with lists for repeated options', () => {
    const yaml = `incoming-queue: path=/var/spool/sender
outgoing-broker-uri: stomp+ssl://broker.example.org:6162
outgoing-broker-auth:
  - plain name=producer pass=secret%20word
reliable: yes
remove: on
callback-code: |-
  $hdr{destination} = "/queue/test";
  $hdr{persistent} = "true";
`;
    const fromConf = loadOptions({ configFile: file('sender.conf', SENDER) }).options;
    expect(loadOptions({ configFile: file('sender.yaml', yaml) }).options).toEqual(fromConf);
    expect(loadOptions({ configFile: file('sender.yml', yaml) }).options).toEqual(fromConf);
  });

  test('config - JSON and YAML problems carry their line', () => {
    expect(
      problems({
        configFile: file(
          'bad.json',
          '{\n  "count": -1,\n  "incoming-queue": "path=/q",\n  "outgoing-queue": {"type": "NULL"}\n}',
        ),
      }),
    ).toEqual(['DIR/bad.json:2: count: must be >= 0, got -1']);
    expect(
      problems({
        configFile: file('bad.yaml', 'incoming-queue: path=/q\noutgoing-queue: type=NULL\nsubscribe:\n  - destination=/q\n'),
      }),
    ).toEqual(['DIR/bad.yaml:4: subscribe: needs an incoming broker (incoming-broker-uri)']);
  });

  test('config - JSON and YAML syntax errors', () => {
    expect(problems({ configFile: file('x.json', '{"a": 1,}') })[0]).toMatch(/^DIR\/x\.json: invalid JSON: /);
    expect(problems({ configFile: file('x.yaml', 'a: 1\na: 2\n') })).toEqual([
      'DIR/x.yaml:2: invalid YAML: Map keys must be unique',
    ]);
    expect(problems({ configFile: file('y.yaml', '- a\n- b\n') })).toEqual([
      'DIR/y.yaml: the top level must be a mapping of options',
    ]);
  });
});

describe('config - command line', () => {
  test('config - command-line values override the file, lists included', () => {
    const conf = file(
      'r.conf',
      'incoming-broker-uri tcp://a:1\nsubscribe destination=/queue/a\noutgoing-queue path=/q\ncount 5\nreliable 1\n',
    );
    const { options, sources } = loadOptions({
      configFile: conf,
      argv: {
        count: 7,
        subscribe: ['destination=/queue/b', 'destination=/queue/c'],
        'no-reliable': true,
        d: [true, true, true],
        s: true,
      },
    });
    expect(options.count).toBe(7);
    expect(options.subscribe).toEqual([{ destination: '/queue/b' }, { destination: '/queue/c' }]);
    expect(options.reliable).toBe(false);
    expect(options.debug).toBe(3);
    expect(options.statistics).toBe(true);
    expect(options.prefetch).toBeUndefined();
    expect(sources.count).toBe('command line');
    expect(sources['incoming-broker-uri']).toBe(`${conf}:1`);
  });

  test('config - the command line alone, with --config taken from argv', () => {
    const conf = file('c.conf', 'outgoing-queue path=/q\n');
    const { options } = loadOptions({
      argv: { config: conf, 'incoming-queue': 'path=/in type=dqn', loop: 'yes', 'metrics-port': '9100', 'log-format': 'JSON' },
    });
    expect(options).toMatchObject({
      'incoming-queue': { type: 'DQN', path: '/in' },
      'outgoing-queue': { type: 'DQS', path: '/q' },
      loop: true,
      'metrics-port': 9100,
      'log-format': 'json',
    });
  });

  test('config - command-line problems are reported as --key', () => {
    expect(problems({ argv: { 'incoming-queue': 'path=/in', 'outgoing-queue': 'path=/out', count: 'many', windw: 3 } })).toEqual([
      'command line: --windw: unknown option (did you mean window?)',
      'command line: --count: expected an integer >= 0, got "many"',
    ]);
  });
});

describe('config - validation', () => {
  test('config - booleans accept 0/1, true/false, yes/no, on/off', () => {
    for (const [text, value] of [
      ['0', false],
      ['1', true],
      ['TRUE', true],
      ['false', false],
      ['Yes', true],
      ['no', false],
      ['on', true],
      ['off', false],
    ] as const) {
      const conf = file('b.conf', `incoming-queue path=/q\noutgoing-queue type=NULL\nlazy ${text}\n`);
      expect(loadOptions({ configFile: conf }).options.lazy).toBe(value);
    }
  });

  test('config - msgbricks additions: metrics-port, dead-letter-queue, log-format, broker reconnect', () => {
    const conf = file(
      'm.conf',
      `incoming-queue path=/q
<outgoing-broker>
  uri tcp://b:61613
  <reconnect>
    initial-delay 0.5
    max-delay 30
    multiplier 2
    max-attempts 10
  </reconnect>
</outgoing-broker>
metrics-port 9100
<dead-letter-queue>
  path /var/spool/dlq
</dead-letter-queue>
log-format json
`,
    );
    expect(loadOptions({ configFile: conf }).options).toMatchObject({
      'outgoing-broker-reconnect': { 'initial-delay': 0.5, 'max-delay': 30, multiplier: 2, 'max-attempts': 10 },
      'metrics-port': 9100,
      'dead-letter-queue': { type: 'DQS', path: '/var/spool/dlq' },
      'log-format': 'json',
    });
  });

  test('config - every problem at once, each with its FILE:LINE and key', () => {
    const conf = file(
      'bad.conf',
      `<stompclt>
  incomming-queue path=/q
  count -3
  duration soon
  reliable maybe
  <incoming-broker>
    uri tcp://a:1
    <auth>
      scheme plain
      name x
    </auth>
    type HornetQ
  </incoming-broker>
  incoming-queue path=/in type=XYZ
  outgoing-queue "granularity=10"
  loop 1
  callback-code x();
  callback-path /cb.pl
  daemon 1
  statistics 1
  prefetch 1
  prefetch 2
  metrics-port 70000
  quit 1
  <subscriber>
    destination /queue/x
  </subscriber>
</stompclt>
`,
    );
    expect(problems({ configFile: conf })).toEqual([
      'DIR/bad.conf:25: subscriber: unknown block (did you mean subscribe?)',
      'DIR/bad.conf:2: incomming-queue: unknown option (did you mean incoming-queue?)',
      'DIR/bad.conf:24: quit: only valid on the command line',
      'DIR/bad.conf:3: count: must be >= 0, got "-3"',
      'DIR/bad.conf:4: duration: expected a number of seconds >= 0, got "soon"',
      'DIR/bad.conf:5: reliable: expected a boolean (0/1, true/false, yes/no, on/off), got "maybe"',
      'DIR/bad.conf:8: incoming-broker-auth: plain credential without pass',
      'DIR/bad.conf:12: incoming-broker-type: expected one of ActiveMQ, Apollo, Artemis, RabbitMQ, UNKNOWN, got "HornetQ"',
      'DIR/bad.conf:14: incoming-queue: type must be DQS, DQN or NULL, got "XYZ"',
      'DIR/bad.conf:15: outgoing-queue: path is required',
      'DIR/bad.conf:22: prefetch: given more than once (first at DIR/bad.conf:21)',
      'DIR/bad.conf:23: metrics-port: must be <= 65535, got "70000"',
      'DIR/bad.conf:14: incoming-queue: cannot be combined with incoming-broker-uri (DIR/bad.conf:7): give exactly one incoming module',
      'DIR/bad.conf:7: incoming-broker-uri: an incoming broker needs at least one subscribe',
      'DIR/bad.conf:18: callback-path: cannot be combined with callback-code (DIR/bad.conf:17)',
      'DIR/bad.conf:20: statistics: cannot be combined with daemon (DIR/bad.conf:19)',
    ]);
  });

  test('config - cross-option rules: modules, loop/remove, subscribe, callback data, heart-beat', () => {
    expect(
      problems({
        argv: { loop: true, remove: 'yes', prefetch: 3, unsubscribe: [''], 'callback-data': 'a=1', 'heart-beat': true },
      }),
    ).toEqual([
      'command line: no incoming module: give incoming-broker-uri or incoming-queue',
      'command line: no outgoing module: give outgoing-broker-uri or outgoing-queue',
      'command line: --loop: needs an incoming queue (incoming-queue)',
      'command line: --remove: needs an incoming queue (incoming-queue)',
      'command line: --prefetch: needs an incoming broker (incoming-broker-uri)',
      'command line: --unsubscribe: needs an incoming broker (incoming-broker-uri)',
      'command line: --callback-data: needs callback-code or callback-path',
      'command line: --heart-beat: needs an incoming or outgoing broker',
    ]);
  });

  test('config - broker keys without a URI, and the file named when it has no location', () => {
    const conf = file('x.conf', 'outgoing-broker-auth none\nincoming-queue path=/q\n');
    expect(problems({ configFile: conf })).toEqual(['DIR/x.conf:1: outgoing-broker-auth: needs outgoing-broker-uri']);
    expect(problems({ configFile: file('empty.conf', '# nothing\n') })).toEqual([
      'DIR/empty.conf: no incoming module: give incoming-broker-uri or incoming-queue',
      'DIR/empty.conf: no outgoing module: give outgoing-broker-uri or outgoing-queue',
    ]);
  });

  test('config - quit and status need a pidfile and exclude each other', () => {
    const base = { 'incoming-queue': 'path=/q', 'outgoing-queue': 'type=NULL' };
    expect(problems({ argv: { ...base, quit: true, status: true } })).toEqual([
      'command line: --quit: needs pidfile',
      'command line: --status: needs pidfile',
      'command line: --status: cannot be combined with quit',
    ]);
    expect(
      loadOptions({ argv: { ...base, status: true, pidfile: '/run/x.pid', 'timeout-status': '0.5' } }).options,
    ).toMatchObject({
      status: true,
      pidfile: '/run/x.pid',
      'timeout-status': 0.5,
    });
  });

  test('config - broker URIs are parsed by the protocol their scheme picks (the program one for tcp:// and ssl://)', () => {
    const argv = (uri: string) => ({ 'incoming-broker-uri': uri, subscribe: 'destination=/q', 'outgoing-queue': 'path=/q' });
    expect(problems({ argv: argv('udp://a:1') })).toEqual([
      'command line: --incoming-broker-uri: unsupported scheme "udp" in broker URI "udp://a:1": expected tcp, stomp, stomp+tcp, nio, stomp+nio, ssl, tls, stomp+ssl, stomp+tls, nio+ssl or stomp+nio+ssl',
    ]);
    for (const uri of ['nio://a:1', 'stomp+nio://a', 'tls://a', 'amqps://a/vhost', 'failover:(tcp://a,stomp+ssl://b)']) {
      expect(loadOptions({ argv: argv(uri) }).options['incoming-broker-uri']).toBe(uri);
    }
    // tcp:// with a path: a virtual host for amqpclt, no STOMP URI for stompclt.
    expect(loadOptions({ argv: argv('tcp://a/prod'), program: 'amqpclt' }).options['incoming-broker-uri']).toBe('tcp://a/prod');
    expect(problems({ argv: argv('tcp://a/prod') })).toEqual([
      'command line: --incoming-broker-uri: broker URI "tcp://a/prod" has a path: expected stomp://host[:port]',
    ]);
    // A checkUri of the caller's own replaces the protocols' parsers.
    expect(loadOptions({ argv: argv('udp://a:1'), checkUri: () => undefined }).options['incoming-broker-uri']).toBe('udp://a:1');
  });

  test("config - credentials are decoded as UTF-8 and checked by the connection core's rules", () => {
    const argv = { 'outgoing-broker-uri': 'tcp://a', 'incoming-queue': 'path=/q' };
    expect(
      loadOptions({ argv: { ...argv, 'outgoing-broker-auth': 'plain name=gu%20est pass=p%C3%A9' } }).options[
        'outgoing-broker-auth'
      ],
    ).toEqual([{ scheme: 'plain', name: 'gu est', pass: 'pé' }]);
    expect(problems({ argv: { ...argv, 'outgoing-broker-auth': ['plain name=a pass=%zz', 'plain pass=x'] } })).toEqual([
      'command line: --outgoing-broker-auth: credential field pass: invalid percent-encoding (expected %XX sequences of UTF-8 bytes)',
      'command line: --outgoing-broker-auth: plain credential without name',
    ]);
  });

  test('config - bad URIs, k=v words and credentials', () => {
    expect(
      problems({
        argv: {
          'incoming-broker-uri': 'mq.example:61613',
          subscribe: 'destination',
          'incoming-broker-auth': ['kerberos x=1', 'x509 cert=c key=k user=u'],
          'outgoing-queue': 'path=/q foo=1',
          'outgoing-broker-stomp-debug': 'io verbose',
        },
      }),
    ).toEqual([
      'command line: --incoming-broker-uri: invalid broker URI "mq.example:61613": expected stomp://host[:port]',
      'command line: --subscribe: expected key=value, got "destination"',
      'command line: --incoming-broker-auth: unknown credential scheme "kerberos" (none, plain or x509)',
      'command line: --incoming-broker-auth: unexpected field(s) in x509 credential: user',
      'command line: --outgoing-queue: unknown queue option(s): foo',
      'command line: --outgoing-broker-stomp-debug: unknown word(s) verbose (all api body command connection header io)',
      'command line: --outgoing-broker-stomp-debug: needs outgoing-broker-uri',
    ]);
  });

  test('config - syntax errors of the file are reported before anything else', () => {
    expect(problems({ configFile: file('s.conf', '<a>\n') })).toEqual([
      'DIR/s.conf:1: unclosed block <a>: no </a> before the end of DIR/s.conf',
    ]);
  });

  test("config - filter: a selector is checked with the options; filter-on-broker makes it every subscription's selector", () => {
    const conf = file(
      'recv.conf',
      `incoming-broker-uri = stomp://mq.example.org:61613\n<subscribe>\n  destination /queue/a\n</subscribe>\n<subscribe>\n  destination /queue/b\n</subscribe>\noutgoing-queue = path=/out\nfilter = prio > 3\nfilter-on-broker = yes\n`,
    );
    const { options } = loadOptions({ configFile: conf });
    expect(options.filter).toBe('prio > 3');
    expect(options.subscribe).toEqual([
      { destination: '/queue/a', selector: 'prio > 3' },
      { destination: '/queue/b', selector: 'prio > 3' },
    ]);
    expect(
      problems({
        argv: {
          'incoming-broker-uri': 'stomp://mq.example.org:61613',
          subscribe: 'destination=/queue/a selector=x=1',
          'outgoing-queue': 'path=/out',
          filter: "x = 'a' OR",
          'filter-on-broker': true,
        },
      }),
    ).toEqual([
      'command line: --filter: invalid selector at column 11: expected one of "(", "+", "-", "FALSE", "NOT", "NULL", "TRUE", "XPATH", "XQUERY", identifier, number, string literal but found the end',
      "command line: --filter-on-broker: cannot be combined with a subscription's own selector (command line)",
    ]);
  });

  test('config - the schema knows every stompclt option of the reference table', () => {
    const names = [
      'incoming-broker-uri incoming-broker-auth incoming-broker-connect incoming-broker-sockopts incoming-broker-stomp-debug incoming-broker-type',
      'incoming-queue outgoing-broker-uri outgoing-broker-auth outgoing-broker-connect outgoing-broker-sockopts outgoing-broker-stomp-debug',
      'outgoing-broker-type outgoing-queue subscribe unsubscribe reliable window prefetch count duration timeout-inactivity loop remove lazy',
      'heart-beat timeout-client timeout-server timeout-connect timeout-broker timeout-flush timeout-disconnect timeout-linger timeout-status',
      'callback-code callback-path callback-data statistics daemon pidfile quit status debug config config-general list help manual version',
    ]
      .join(' ')
      .split(' ');
    for (const name of names) expect(OPTION_SCHEMA[name]).toBeDefined();
    const additions = Object.entries(OPTION_SCHEMA)
      .filter(([, s]) => s.msgbricks)
      .map(([k]) => k);
    expect(additions.sort()).toEqual([
      'dead-letter-queue',
      'filter',
      'filter-on-broker',
      'incoming-broker-reconnect',
      'log-format',
      'metrics-address',
      'metrics-port',
      'outgoing-broker-reconnect',
      'timeout-spool-fault',
    ]);
  });
});

describe('config - amqpclt', () => {
  const modules = { 'incoming-queue': 'path=/var/spool/out', 'outgoing-broker-uri': 'amqps://mq.example.org:5671/prod' };

  test('config - AMQP URIs are broker URIs for both commands', () => {
    for (const program of ['stompclt', 'amqpclt']) {
      const { options } = loadOptions({ argv: modules, program });
      expect(options['outgoing-broker-uri']).toBe('amqps://mq.example.org:5671/prod');
    }
  });

  test('config - python-amqpclt options: accepted by amqpclt, unknown to stompclt', () => {
    const argv = {
      ...modules,
      log: 'file',
      logfile: '/var/log/amqpclt.log',
      loglevel: 'WARNING',
      'outgoing-broker-module': 'pika',
    };
    const { options } = loadOptions({ argv, program: 'amqpclt' });
    expect(options.log).toBe('file');
    expect(options.logfile).toBe('/var/log/amqpclt.log');
    expect(options.loglevel).toBe('warning');
    expect(options['outgoing-broker-module']).toBe('pika');
    expect(problems({ argv, program: 'stompclt' })).toEqual([
      'command line: --log: an option of amqpclt, not of stompclt',
      'command line: --logfile: an option of amqpclt, not of stompclt',
      'command line: --loglevel: an option of amqpclt, not of stompclt',
      'command line: --outgoing-broker-module: an option of amqpclt, not of stompclt',
    ]);
    // stompclt's defaults do not grow amqpclt keys.
    expect(loadOptions({ argv: modules }).options.pod).toBeUndefined();
  });

  test('config - an <amqpclt> block is unwrapped and its keys checked with their lines', () => {
    const conf = file(
      'a.conf',
      '<amqpclt>\n  outgoing-broker-uri amqp://mq:5672\n  incoming-queue path=/q\n  log file\n</amqpclt>\n',
    );
    expect(problems({ configFile: conf, program: 'amqpclt' })).toEqual(['DIR/a.conf:4: log: file needs logfile']);
    expect(loadOptions({ configFile: conf, argv: { logfile: '/tmp/l' }, program: 'amqpclt' }).options.log).toBe('file');
  });
});
