/**
 * The harness: every prompt the agent uses and the policy it decides by, behind this one
 * interface. Services, workflows and tests import this file only, never a file behind it, so the
 * evolvable files (manifest.json) can be rewritten freely as long as they fill harness/contract.ts.
 * The policy is parsed here, at load, against bounds the harness does not own: an out-of-bounds
 * value fails the import (and so the worker and the tests), it never reaches a decision.
 */
import { type Harness, policySchema } from './contract.ts';
import { approval } from './policy/approval.ts';
import { improve } from './policy/improve.ts';
import { quality } from './policy/quality.ts';
import { lexical, ranking, retrieval } from './policy/ranking.ts';
import { forge, llm } from './policy/retry.ts';
import { session } from './policy/session.ts';
import { agent } from './prompts/agent.ts';
import { diagnose } from './prompts/diagnose.ts';
import { patch } from './prompts/evolve/patch.ts';
import { api } from './prompts/forge/api.ts';
import { implementation } from './prompts/forge/implementation.ts';
import { repair } from './prompts/forge/repair.ts';
import { spec } from './prompts/forge/spec.ts';
import { tests } from './prompts/forge/tests.ts';
import { rewrite } from './prompts/improve/rewrite.ts';
import { reask } from './prompts/reask.ts';

export const harness: Harness = {
  prompts: { agent, forge: { spec, api, tests, implementation, repair }, improve: { rewrite, diagnose }, evolve: { patch }, reask },
  policy: policySchema.parse({ ranking, lexical, retrieval, forge, llm, approval, session, improve, quality }),
};

export type * from './contract.ts';
/** the bounds a policy is held to, for a check of a policy other than this one (a patched harness) */
export { durationMs, policySchema } from './contract.ts';
