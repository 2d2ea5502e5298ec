import { Supervision, type SupervisionConfig } from '@msgbricks/supervisor';
import { makeLogger } from './logger';

/** `single`: one cycle over the LSB services, then exit (0 when all are as expected or were made so, 1 otherwise). */
export async function single(config: SupervisionConfig, print: (lines: string[]) => void): Promise<number> {
  const sup = new Supervision(config, { log: makeLogger(config.global) });
  const { ok, lines } = await sup.single();
  print(lines);
  return ok ? 0 : 1;
}
