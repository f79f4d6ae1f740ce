import path from 'node:path';
import { z } from 'zod';
import { type HarnessPatch, harnessPatchSchema, type ReplayReport } from '../domain/evolve.ts';
import type { KillSwitch } from '../services/control/kill-switch.ts';
import type { Sql } from '../services/db.ts';
import { checkPatch, harnessState } from '../services/evolution/workspace.ts';
import type { Llm } from '../services/llm/client.ts';
import { createEvolveAuthor, writePatchInputSchema } from '../services/llm/evolve-author.ts';
import { createEvolveRuns } from '../services/runs/evolve-runs.ts';
import { repoRoot } from '../services/sandbox/bundle.ts';
import { adapted, parseActivityInput } from './failures.ts';
import { guarded } from './guard.ts';

const workflowId = z.string().min(1);
const beginSchema = z.object({
  id: z.string().min(1),
  workflowId,
  batchKey: z.string().min(1),
  failureType: z.string().min(1),
  evidenceIds: z.array(z.number().int().positive()),
  revision: z.string().min(1),
});
const attemptsSchema = z.object({
  workflowId,
  attempts: z.array(z.object({ attempt: z.number().int(), stage: z.string(), passed: z.boolean(), reason: z.string() })),
});
const candidateSchema = z.object({
  workflowId,
  status: z.string().min(1),
  reason: z.string(),
  rationale: z.string().optional(),
  patch: harnessPatchSchema.optional(),
  diff: z.string().optional(),
  treeHash: z.string().optional(),
  image: z.string().optional(),
  imageDigest: z.string().optional(),
  replay: z.custom<ReplayReport>((v) => typeof v === 'object' && v !== null).optional(),
  /** part 2: the person's consent (who, when, approve or not) and the deploy's outcome */
  consent: z.record(z.string(), z.unknown()).optional(),
  deploy: z.record(z.string(), z.unknown()).optional(),
});
const checkSchema = z.object({
  candidateId: z.string().regex(/^[A-Za-z0-9._:-]+$/),
  revision: z.string().min(1),
  /** the patch's files, resolved against the revision */
  edits: z.array(z.object({ path: z.string().min(1), content: z.string() })).min(1),
});

/**
 * The evolve cycle's steps on the control queue: the harness as it is, the coding agent, the checks
 * on a scratch tree (never the running one), and the ledger. The model call and the checks are
 * refused while frozen.
 */
export function createEvolveActivities(deps: { sql: Sql; llm: Llm; killSwitch: KillSwitch; home: string; root?: string }) {
  const runs = createEvolveRuns(deps.sql);
  const author = createEvolveAuthor(deps.llm);
  const root = deps.root ?? repoRoot;
  const open = adapted({
    harnessSnapshot: async () => harnessState(root),
    beginEvolve: (input: z.input<typeof beginSchema>) => runs.beginEvolve(parseActivityInput(beginSchema, input, 'beginEvolve input')),
    recordEvolveAttempts: (input: z.input<typeof attemptsSchema>) =>
      runs.recordEvolveAttempts(parseActivityInput(attemptsSchema, input, 'recordEvolveAttempts input')),
    recordCandidate: (input: z.input<typeof candidateSchema>) =>
      runs.recordCandidate(
        parseActivityInput(candidateSchema, input, 'recordCandidate input') as Parameters<typeof runs.recordCandidate>[0],
      ),
  });
  const costly = adapted({
    writeHarnessPatch: (
      input: z.input<typeof writePatchInputSchema>,
    ): Promise<{ patch: HarnessPatch; tokens: { input: number; output: number } }> =>
      author.writeHarnessPatch(parseActivityInput(writePatchInputSchema, input, 'writeHarnessPatch input')),
    async checkHarnessPatch(input: z.input<typeof checkSchema>) {
      const parsed = parseActivityInput(checkSchema, input, 'checkHarnessPatch input');
      return checkPatch({
        repoRoot: root,
        scratchDir: path.join(deps.home, 'evolve', parsed.candidateId),
        typecheckCache: path.join(deps.home, 'evolve', 'typecheck.tsbuildinfo'),
        revision: parsed.revision,
        edits: parsed.edits,
      });
    },
  });
  return { ...open, ...guarded(costly, deps.killSwitch) };
}

export type EvolveActivities = ReturnType<typeof createEvolveActivities>;
