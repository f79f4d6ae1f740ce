import type { QueryDefinition } from '@temporalio/client';
import { InvalidInputError } from '../domain/errors.ts';
import { type ForgeOutcome, forgeRequestSchema } from '../domain/forge.ts';
import { forgeProgressQuery } from '../workflows/definitions.ts';
import type { Session } from './context.ts';
import { cycleHandle, type StartedCycle, startCycle } from './cycles.ts';
import { type CycleEnd, followCycle } from './follow.ts';

/** What a person asks to be forged: the need in words, optionally a name and API documentation. */
export interface ForgeAsk {
  need: string;
  name?: string;
  apiDocs?: string;
  /** an OpenAPI document, already parsed from JSON */
  openApi?: unknown;
}

/** What the forge workflow's progress query answers (its phases, attempts, and what waits for a person). */
export type ForgeProgressAnswer = typeof forgeProgressQuery extends QueryDefinition<infer P> ? P : never;

/** Starts a forge workflow (validated here, and again in the workflow). */
export async function startForge(session: Session, ask: ForgeAsk): Promise<StartedCycle> {
  const parsed = forgeRequestSchema.safeParse({ ...ask, sandboxQueue: session.cfg.FORGE_SANDBOX_QUEUE });
  if (!parsed.success) {
    throw new InvalidInputError('forge request', parsed.error.issues.map((i) => `${i.path.join('.') || 'need'}: ${i.message}`).join('; '));
  }
  return startCycle(session, 'forge', [parsed.data]);
}

/** Follows a started forge to its outcome (registered, or not and why), reporting its progress. */
export async function followForge(
  session: Session,
  started: StartedCycle,
  onProgress?: (progress: ForgeProgressAnswer) => void,
): Promise<CycleEnd<ForgeOutcome>> {
  const handle = await cycleHandle(session, 'forge', started);
  return followCycle<ForgeOutcome, ForgeProgressAnswer>(handle, forgeProgressQuery, { onProgress });
}
