// The broker is the oracle: every selector of the table (and 150 random ones) is subscribed on a real ActiveMQ 5.17
// over STOMP, the messages are published, and the set ActiveMQ delivers must be the set `matches` accepts; every
// selector ActiveMQ refuses must be refused by parseSelector, and the other way round. One broker, one connection:
// a topic per selector, and one wildcard subscription that sees an end marker per topic once that topic's messages
// have all been dispatched (ActiveMQ writes a connection's deliveries in dispatch order).
import { parseSelector } from '@msgbricks/selector';
import type { Broker, StompConnection } from '@msgbricks/test-support';
import * as brokers from '@msgbricks/test-support';
import fc from 'fast-check';
import { selectorArbitrary } from './helpers/generate';

jest.setTimeout(600_000);

/** Varied string headers, as STOMP carries them (the comments say what each is there for). */
const MESSAGES: Record<string, string>[] = [
  /* 0 */ { x: '5', s: 'production', prio: '5', hostgroup: 'castor/disk', flag: 'true' },
  /* 1 leading zero, upper-case boolean */ { x: '05', s: 'devel', prio: '2', hostgroup: 'castor', flag: 'TRUE' },
  /* 2 a decimal string, a word as boolean */ { x: '7.0', s: 'production', prio: 'abc', hostgroup: 'eos/x', flag: 'yes' },
  /* 3 blank before, STOMP headers ActiveMQ maps */ {
    x: ' 4',
    y: 'b',
    name: "it's",
    priority: '7',
    persistent: 'true',
    type: 't1',
    'correlation-id': 'c1',
  },
  /* 4 hex-looking, LIKE wildcards in values */ { x: '0x10', y: 'a%c', name: 'a_c' },
  /* 5 exponent */ { x: '2e1', y: 'A', name: 'abc' },
  /* 6 a word */ { x: 'abc', y: 'c' },
  /* 7 beyond 2^53 */ { x: '9007199254740993', n: '9007199254740992' },
  /* 8 negative, NaN */ { x: '-5', n: 'NaN' },
  /* 9 empty, infinite */ { x: '', y: 'b', n: '1e400' },
  /* 10 nothing */ {},
  /* 11 negative zero */ { y: 'c', n: '-0' },
  /* 12 JMS group, reply-to, timestamp */ {
    x: '16',
    n: '8',
    JMSXGroupID: 'g',
    JMSXGroupSeq: '3',
    'reply-to': '/queue/r',
    timestamp: '5',
    expires: '0',
  },
  /* 13 plus sign, priority, a hyphenated name's parts */ {
    x: '+5',
    z: 'true',
    priority: '1',
    my: '3',
    prop: '1',
    'my-prop': '2',
  },
  /* 14 a non-ASCII digit, a newline, upper case */ {
    x: '\u0665',
    y: 'a\nc',
    hostgroup: 'castor/tape',
    s: 'PRODUCTION',
    JMSType: 'zz',
  },
];

/** Selectors ActiveMQ accepts; what it delivers is checked at every run. */
const ACCEPTED = [
  // string properties against numbers: Integer.valueOf, Long.valueOf, Double.valueOf by the literal's type
  'x = 5',
  'x = 5.0',
  'x > 4',
  'x >= 4.5',
  'x < 10',
  'x = 20',
  'x = 20.0',
  '5 = x',
  '5.0 = x',
  'x <> 5',
  '5 <> x',
  'x = 9007199254740993',
  'x = 9007199254740993.0',
  'x > 9007199254740992',
  'n = 9007199254740992',
  'x = 16',
  'x = 0x10',
  'x = 020',
  'x = 16L',
  'n = 010',
  'x = 1e1 * 2',
  'x = -5',
  'x = +5',
  'x = 5 - -x',
  'n = 0',
  'n = 0.0',
  'n = -0.0',
  'n = 1e400',
  'n > 1.5e300',
  'n = 0.0 / 0.0',
  'n = 1 / 0',
  'n = 1 % 0',
  'x = 9223372036854775808',
  // booleans: Boolean.valueOf on the string side; a property alone is true only for a real boolean
  'flag = TRUE',
  'flag = FALSE',
  "flag = 'true'",
  'z = TRUE',
  'flag',
  'NOT flag',
  'flag AND TRUE',
  'flag = TRUE AND TRUE',
  // arithmetic: + concatenates on a string, anything else on a string fails; / and % in doubles; int overflow
  'x + 1 = 6',
  "x + '' = '5'",
  "x + 1 = '51'",
  'x * 2 = 10',
  'x / 2 = 2.5',
  '1 + x = 6',
  '2 / 4 = 0.5',
  '7 / 2 = 3',
  '7 % 2 = 1',
  '2147483647 + 1 = -2147483648',
  '2147483647 + 1 = 2147483648',
  '2147483648 + 1 = 2147483649',
  '-x IS NULL',
  // precedence: NOT binds tighter than comparisons
  'NOT x = 5',
  "NOT x = 'abc'",
  'NOT x IS NULL',
  'NOT (x IS NULL)',
  "NOT x <> 'a'",
  "NOT (x <> 'abc')",
  "x = 'abc' OR y = 'b' AND name = 'abc'",
  "(x = 'abc' OR y = 'b') AND name = 'abc'",
  'x > 1 = TRUE',
  "x = 'abc' = TRUE",
  "x IN ('abc') = TRUE",
  "(x = 'abc') = (y = 'c')",
  // NULL: asymmetric equality, three-valued logic
  'x IS NULL',
  'x IS NOT NULL',
  'x IS NULL IS NULL',
  "x = 'abc'",
  "'abc' = x",
  "x <> 'abc'",
  "'abc' <> x",
  'x = y',
  'x <> y',
  'q = r',
  "(x <> 'a') IS NULL",
  "NOT (x = 'abc' AND y = 'b')",
  "NOT (x = 'abc' OR y = 'b')",
  "NOT (y = 'b' AND x = 'abc')",
  "x IS NULL OR y = 'b'",
  "x IN ('abc', '5')",
  "x NOT IN ('abc', '5')",
  "x LIKE '%'",
  "x NOT LIKE 'a%'",
  'x BETWEEN 4 AND 6',
  'x NOT BETWEEN 4 AND 6',
  'n BETWEEN -1 AND 1',
  'TRUE',
  'FALSE',
  'NULL',
  // keywords in any case, identifiers case-sensitive, string escapes
  "x like 'a%' and y = 'c'",
  "X = 'abc'",
  "name = 'it''s'",
  "s = 'production'",
  "S = 'production'",
  // LIKE: % and _ (newlines included), ESCAPE, case-sensitive
  "name LIKE 'a_c'",
  "name LIKE 'a\\_c' ESCAPE '\\'",
  "y LIKE 'a\\%c' ESCAPE '\\'",
  "y LIKE 'a!%c' ESCAPE '!'",
  "y LIKE 'a_c'",
  "y LIKE 'a%'",
  "x LIKE 'A%'",
  "hostgroup LIKE 'castor/%'",
  "hostgroup LIKE 'castor%'",
  "hostgroup NOT LIKE 'castor/%'",
  "s = 'production' AND (prio > 3 OR hostgroup LIKE 'castor/%')",
  // JMS headers as ActiveMQ derives them from STOMP headers
  'JMSPriority = 7',
  'JMSPriority = 4',
  'JMSPriority > 3',
  "JMSPriority = '4'",
  "JMSPriority IN ('4')",
  "JMSPriority LIKE '4'",
  "JMSType = 't1'",
  "JMSType = 'zz'",
  "JMSCorrelationID = 'c1'",
  "JMSDeliveryMode = 'PERSISTENT'",
  "JMSDeliveryMode = 'NON_PERSISTENT'",
  'JMSDeliveryMode = 2',
  'JMSExpiration = 0',
  'JMSTimestamp > 0',
  'JMSTimestamp = 5',
  "JMSMessageID LIKE 'ID:%'",
  'JMSReplyTo IS NULL',
  "JMSDestination = 'x'",
  'JMSRedelivered = FALSE',
  'JMSXGroupID IS NULL',
  "JMSXGroupID = 'g'",
  'JMSXGroupSeq = 3',
  'JMSXDeliveryCount = 1',
  // STOMP headers ActiveMQ takes out of the properties
  "priority = '7'",
  'timestamp IS NULL',
  "type = 't1'",
  "persistent = 'true'",
  // AMQ-3355: a hyphenated name is a subtraction; -- is two minus signs, not a comment
  'my-prop = 2',
  'my-prop = 1',
  "content-type = 'text/plain'",
  "x = 'abc' -- comment",
  "x = 'abc' /* comment */",
];

/** Selectors ActiveMQ refuses. */
const REFUSED = [
  '',
  'x = 5 AND',
  'x == 5',
  'x != 5',
  "x = 'a",
  'x = 5e',
  'x = NULL',
  'NULL = x',
  "x < 'b'",
  "x > 'a'",
  'x < TRUE',
  "x BETWEEN 'a' AND 'b'",
  "x BETWEEN 1 AND 'a'",
  "'a' BETWEEN x AND y",
  'x IN (5)',
  'x IN ()',
  "x LIKE 'a%' ESCAPE 'ab'",
  "x LIKE 'a%' ESCAPE ''",
  'x LIKE y',
  'NOT 5 = x',
  "NOT 'abc' = x",
  'TRUE = 5',
  'x + 1',
  '5',
  "'abc'",
  'NOT 5',
  '(x = 1) < 2',
  'x = 08',
  'x = 0x',
  'and = 1',
  'x = 1 or',
  'x IS 5',
  'x = 5 5',
  'é = 1',
  "x = 'a' --",
  'x = (1',
];

let broker: Broker;
let stomp: StompConnection;

beforeAll(async () => {
  broker = await brokers.startActiveMQ();
  stomp = await brokers.stompConnect({ port: broker.ports.stomp, login: broker.user, passcode: broker.password });
});

afterAll(async () => {
  await stomp?.close().catch(() => undefined);
  await broker?.stop();
});

interface Verdict {
  refused: boolean;
  delivered: number[];
}

/** What ActiveMQ does with each selector: refuses it, or delivers these messages (indexes in MESSAGES). */
async function askBroker(selectors: string[]): Promise<Verdict[]> {
  const base = `/topic/selector${Date.now()}.`;
  const verdicts: Verdict[] = selectors.map(() => ({ refused: false, delivered: [] }));
  const receipts = new Set<string>(['all']);
  stomp.send('SUBSCRIBE', { id: 'all', destination: `${base}>`, ack: 'auto', receipt: 'all' });
  selectors.forEach((selector, i) => {
    receipts.add(`r${i}`);
    stomp.send('SUBSCRIBE', { id: `s${i}`, destination: `${base}${i}`, ack: 'auto', selector, receipt: `r${i}` });
  });
  let markers = 0;
  const take = async () => {
    const f = await stomp.next(30_000);
    if (f.command === 'RECEIPT') receipts.delete(f.headers['receipt-id'] ?? '');
    else if (f.command === 'ERROR') {
      // A refused SUBSCRIBE names its receipt; a SEND whose evaluation failed in some selector names none.
      const r = f.headers['receipt-id'];
      if (r !== undefined && receipts.delete(r)) (verdicts[Number(r.slice(1))] as Verdict).refused = true;
    } else if (f.command === 'MESSAGE') {
      if (f.headers.subscription === 'all') {
        if (f.headers['x-end'] !== undefined) markers--;
      } else if (f.headers['x-end'] === undefined) {
        (verdicts[Number(f.headers.subscription?.slice(1))] as Verdict).delivered.push(Number(f.headers['x-n']));
      }
    }
  };
  while (receipts.size > 0) await take();
  selectors.forEach((_, i) => {
    if ((verdicts[i] as Verdict).refused) return;
    MESSAGES.forEach((h, j) => {
      stomp.send('SEND', { destination: `${base}${i}`, ...h, 'x-n': String(j) }, `m${j}`);
    });
    stomp.send('SEND', { destination: `${base}${i}`, 'x-end': '1' }, 'end');
    markers++;
  });
  while (markers > 0) await take();
  stomp.send('UNSUBSCRIBE', { id: 'all' });
  selectors.forEach((_, i) => {
    if (!(verdicts[i] as Verdict).refused) stomp.send('UNSUBSCRIBE', { id: `s${i}` });
  });
  for (const v of verdicts) v.delivered.sort((a, b) => a - b);
  return verdicts;
}

/** What parseSelector makes of each selector, on the headers the subscriber receives. */
function askSelector(selectors: string[]): Verdict[] {
  return selectors.map((text) => {
    let selector: ReturnType<typeof parseSelector>;
    try {
      selector = parseSelector(text);
    } catch {
      return { refused: true, delivered: [] };
    }
    const delivered = MESSAGES.flatMap((h, j) =>
      selector.matches({ ...h, destination: '/topic/t', 'message-id': `ID:test-${j}`, 'x-n': String(j) }) ? [j] : [],
    );
    return { refused: false, delivered };
  });
}

function disagreements(selectors: string[], broker: Verdict[], mine: Verdict[]) {
  return selectors.flatMap((selector, i) =>
    JSON.stringify(broker[i]) === JSON.stringify(mine[i])
      ? []
      : [`${selector}: ActiveMQ ${JSON.stringify(broker[i])}, parseSelector ${JSON.stringify(mine[i])}`],
  );
}

test('activemq - the table: ActiveMQ delivers exactly what matches() accepts, and refuses what parseSelector refuses', async () => {
  expect(ACCEPTED.length).toBeGreaterThanOrEqual(60);
  expect(MESSAGES.length).toBeGreaterThanOrEqual(12);
  const all = [...ACCEPTED, ...REFUSED];
  const theirs = await askBroker(all);
  const mine = askSelector(all);
  expect(disagreements(all, theirs, mine)).toEqual([]);
  // The table says which selectors ActiveMQ refuses: if that changes, the table is out of date.
  expect(theirs.flatMap((v, i) => (v.refused ? [all[i]] : []))).toEqual(REFUSED);
  // The table is worth something only if the selectors tell messages apart.
  const distinct = new Set(theirs.filter((v) => !v.refused).map((v) => JSON.stringify(v.delivered)));
  expect(distinct.size).toBeGreaterThan(40);
});

test('activemq - 150 random selectors: ActiveMQ and matches() agree', async () => {
  const random = fc.sample(selectorArbitrary(), { numRuns: 150 });
  const theirs = await askBroker(random);
  const mine = askSelector(random);
  expect(disagreements(random, theirs, mine)).toEqual([]);
});
