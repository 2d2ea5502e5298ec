import { Supervision, type SupervisionConfig, single as superviseOnce } from '@msgbricks/supervisor';
import { makeLogger } from './logger';

/**
 * `single`: one cycle over the LSB services with the history in `store`, then exit (0 when all are as expected or
 * were made so, 1 otherwise: a start failed, a supervisor gave up or is held down, the store could not be written).
 */
export async function single(config: SupervisionConfig, print: (lines: string[]) => void): Promise<number> {
  const sup = new Supervision(config, { log: makeLogger(config.global) });
  const { ok, lines } = await superviseOnce(sup);
  print(lines);
  return ok ? 0 : 1;
}
