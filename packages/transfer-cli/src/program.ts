/**
 * What differs between the transfer commands built on this package: their name (log lines, messages, metric
 * names, the files kept beside a spool) and the protocol of a broker URI whose scheme does not say
 * (`tcp://`, `ssl://`: STOMP for stompclt, AMQP for amqpclt, as the commands they replace).
 */
import type { BrokerProtocol } from '@msgbricks/agent';
import { AMQP_PROTOCOL } from '@msgbricks/amqp';
import { STOMP_PROTOCOL } from '@msgbricks/stomp';

export interface Program {
  readonly name: string;
  /** The protocol of a broker URI whose scheme does not say. */
  readonly defaultProtocol: BrokerProtocol;
  /** The full manual's file in the msgbricks sources. */
  readonly manual: string;
  /** Example lines of the usage text. */
  readonly examples: readonly string[];
}

export const STOMPCLT: Program = {
  name: 'stompclt',
  defaultProtocol: STOMP_PROTOCOL,
  manual: 'docs/stompclt.md',
  examples: [
    "  stompclt --incoming-queue 'path=/var/spool/in' --outgoing-queue 'path=/var/spool/out type=DQN' --remove",
    "  stompclt --incoming-queue 'path=/var/spool/out' --outgoing-broker-uri 'tcp://mq:61613' --reliable --remove",
    "  stompclt --incoming-broker-uri 'tcp://mq:61613' --subscribe 'destination=/queue/in' --outgoing-queue 'path=/var/spool/in' --reliable",
  ],
};

export const AMQPCLT: Program = {
  name: 'amqpclt',
  defaultProtocol: AMQP_PROTOCOL,
  manual: 'docs/amqpclt.md',
  examples: [
    "  amqpclt --incoming-queue 'path=/var/spool/out' --outgoing-broker-uri 'amqp://mq:5672' --reliable --remove",
    "  amqpclt --incoming-broker-uri 'amqps://mq:5671' --subscribe 'destination=/queue/in' --outgoing-queue 'path=/var/spool/in' --reliable",
    "  amqpclt --incoming-broker-uri 'stomp://mq:61613' --subscribe 'destination=/queue/in' --outgoing-broker-uri 'amqp://mq2:5672' --reliable",
  ],
};

let current: Program = STOMPCLT;

/** The program this process runs, set once by run(). */
export function program(): Program {
  return current;
}

export function setProgram(p: Program): void {
  current = p;
}
