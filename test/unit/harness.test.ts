/**
 * The harness is a bounded unit: its manifest and its folder agree, it imports only pure code, the
 * rest of the tree reaches it through harness/index.ts alone, and the model calls send its prompts
 * and nothing else. Imports are read with TypeScript's parser, so import lines inside prompt texts
 * (the tool contract quotes some) are not mistaken for imports.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { z } from 'zod';
import { maxRepairsSchema, type ToolSpec } from '../../domain/forge.ts';
import { lexicalPolicySchema, rankingPolicySchema } from '../../domain/ranking.ts';
import type { ApiSpec } from '../../domain/tool.ts';
import { durationMs, harness, type PromptedCall, policySchema } from '../../harness/index.ts';
import { metaTools, takeTurn } from '../../services/llm/agent.ts';
import type { Llm, StructuredRequest } from '../../services/llm/client.ts';
import { createForgeAuthor } from '../../services/llm/forge-author.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const harnessDir = path.join(root, 'harness');

const manifestSchema = z.strictObject({
  description: z.string(),
  evolvable: z.array(z.strictObject({ path: z.string().min(1), purpose: z.string().min(1) })),
  fixed: z.array(z.strictObject({ path: z.string().min(1), purpose: z.string().min(1) })),
});
const manifest = manifestSchema.parse(JSON.parse(fs.readFileSync(path.join(harnessDir, 'manifest.json'), 'utf8')));

/** Files under dir, relative to it, with forward slashes (as the manifest writes them). */
function filesUnder(dir: string, rel = ''): string[] {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const p = rel ? `${rel}/${e.name}` : e.name;
    return e.isDirectory() ? filesUnder(dir, p) : [p];
  });
}

function importsOf(file: string): { specifier: string; line: number }[] {
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: { specifier: string; line: number }[] = [];
  const visit = (node: ts.Node): void => {
    const spec =
      ts.isImportDeclaration(node) || ts.isExportDeclaration(node)
        ? node.moduleSpecifier
        : ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword
          ? node.arguments[0]
          : ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)
            ? node.argument.literal
            : undefined;
    if (spec && ts.isStringLiteral(spec))
      found.push({ specifier: spec.text, line: sf.getLineAndCharacterOfPosition(node.getStart()).line + 1 });
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

/** The project's own source folders (not node_modules, not build output). */
function sourceFiles(): string[] {
  const skip = new Set(['node_modules', '.git', 'build', 'harness']);
  const walk = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      if (e.name.startsWith('.') || skip.has(e.name)) return [];
      const p = path.join(dir, e.name);
      return e.isDirectory() ? walk(p) : /\.(ts|mts|mjs)$/.test(e.name) ? [p] : [];
    });
  return walk(root);
}

describe('harness manifest', () => {
  const listed = [...manifest.evolvable, ...manifest.fixed].map((f) => f.path);

  it('lists every file in harness/, and only files that exist', () => {
    const onDisk = filesUnder(harnessDir).sort();
    assert.deepEqual([...listed].sort(), onDisk, 'manifest.json (evolvable + fixed) and the harness/ folder differ');
  });

  it('lists each file once, as evolvable or fixed', () => {
    const dup = listed.filter((p, i) => listed.indexOf(p) !== i);
    assert.deepEqual(dup, [], `listed more than once: ${dup.join(', ')}`);
  });

  it('keeps the interface and the manifest itself fixed', () => {
    const fixed = manifest.fixed.map((f) => f.path);
    for (const f of ['index.ts', 'contract.ts', 'manifest.json']) assert.ok(fixed.includes(f), `${f} must be fixed`);
    for (const f of manifest.evolvable) assert.match(f.path, /^(prompts|policy)\/.+\.ts$/, `${f.path}: only prompts and policy evolve`);
  });
});

describe('harness boundaries', () => {
  it('harness files import only domain/, harness/ and zod', () => {
    const bad: string[] = [];
    for (const rel of filesUnder(harnessDir).filter((f) => f.endsWith('.ts'))) {
      const file = path.join(harnessDir, rel);
      for (const { specifier, line } of importsOf(file)) {
        if (!specifier.startsWith('.')) {
          if (specifier !== 'zod') bad.push(`harness/${rel}:${line}: '${specifier}'`);
          continue;
        }
        const target = path.relative(root, path.resolve(path.dirname(file), specifier)).split(path.sep)[0];
        if (target !== 'domain' && target !== 'harness') bad.push(`harness/${rel}:${line}: '${specifier}'`);
      }
    }
    assert.deepEqual(bad, [], `the harness is pure (workflows import it) and judges nothing:\n${bad.join('\n')}`);
  });

  it('the rest of the tree imports harness/index.ts only, and domain/ not even that', () => {
    const index = path.join(harnessDir, 'index.ts');
    const bad: string[] = [];
    for (const file of sourceFiles()) {
      const rel = path.relative(root, file);
      for (const { specifier, line } of importsOf(file)) {
        if (!specifier.startsWith('.')) continue;
        const target = path.resolve(path.dirname(file), specifier);
        if (!target.startsWith(harnessDir + path.sep)) continue;
        if (target !== index) bad.push(`${rel}:${line}: '${specifier}' (import harness/index.ts)`);
        else if (rel.startsWith(`domain${path.sep}`)) bad.push(`${rel}:${line}: domain/ is below the harness`);
      }
    }
    assert.deepEqual(bad, [], bad.join('\n'));
  });

  it('the LLM services hold no prompt text of their own', () => {
    const dir = path.join(root, 'services', 'llm');
    const long: string[] = [];
    for (const name of fs.readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const file = path.join(dir, name);
      const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
      const visit = (node: ts.Node): void => {
        // A prompt is long or spans lines; error messages and labels are neither, and tagged templates are SQL.
        const tagged = node.parent !== undefined && ts.isTaggedTemplateExpression(node.parent);
        const text = tagged
          ? undefined
          : ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)
            ? node.text
            : ts.isTemplateExpression(node)
              ? node.getText(sf)
              : undefined;
        if (text !== undefined && (text.length > 200 || (ts.isTemplateLiteral(node) && text.includes('\n')))) {
          long.push(`services/llm/${name}:${sf.getLineAndCharacterOfPosition(node.getStart()).line + 1}: ${text.slice(0, 60)}…`);
        }
        ts.forEachChild(node, visit);
      };
      visit(sf);
    }
    assert.deepEqual(long, [], `prompt text belongs in harness/prompts:\n${long.join('\n')}`);
  });
});

describe('harness in use', () => {
  /** An Llm that records each request and answers with the given values in turn. */
  function recordingLlm(...values: unknown[]) {
    const requests: StructuredRequest<unknown>[] = [];
    const llm: Llm = {
      model: 'recording',
      async structured<T>(req: StructuredRequest<T>) {
        requests.push(req as StructuredRequest<unknown>);
        return { value: values[requests.length - 1] as T, usage: {} as never };
      },
      converse: () => Promise.reject(new Error('these checks make structured calls only')),
    };
    return { llm, requests };
  }

  const sent = <In>(call: PromptedCall<In>, input: In) => ({
    system: call.system,
    prompt: call.user(input),
    toolName: call.tool.name,
    toolDescription: call.tool.description,
    maxTokens: call.maxTokens,
  });
  const asSent = (r: StructuredRequest<unknown> | undefined) => ({
    system: r?.system,
    prompt: r?.prompt,
    toolName: r?.toolName,
    toolDescription: r?.toolDescription,
    maxTokens: r?.maxTokens,
  });

  const spec: ToolSpec = {
    name: 'get_weather',
    description: 'Current weather for a city.',
    docstring: 'city: the city name. Returns { city, celsius }.',
    parameters: [{ name: 'city', type: 'string', description: 'city name', required: true }],
    returns: { type: 'object', description: '{ city, celsius }' },
    sideEffect: 'read',
    destructive: false,
    permissions: { network: [], env: [] },
  };
  const apiSpec: ApiSpec | null = null;
  const tests = "import { test } from 'node:test';\nimport { run } from './tool.ts';\ntest('x', () => {});\n";
  const source =
    "import { z } from 'zod';\nexport const manifest = { name: 'get_weather', sideEffect: 'read' };\nexport async function run() {}\n";

  it('an agent turn sends the harness instructions and words for its own tools', async () => {
    const conversed: Parameters<Llm['converse']>[0][] = [];
    const llm: Llm = {
      model: 'recording',
      structured: () => Promise.reject(new Error('a turn makes no structured call')),
      async converse(req) {
        conversed.push(req);
        return {
          turn: { stopReason: 'end_turn', content: [{ type: 'text', text: 'done' }], tokens: { input: 1, output: 1 } },
          usage: {} as never,
        };
      },
    };
    const tool = { name: 'get_weather', description: 'Weather.', inputSchema: { type: 'object' } };
    const messages = [{ role: 'user' as const, content: harness.prompts.agent.task('What is the weather in Bern?') }];
    await takeTurn(llm, { messages, tools: [tool] });
    assert.equal(conversed[0]?.system, harness.prompts.agent.system);
    assert.equal(conversed[0]?.maxTokens, harness.prompts.agent.maxTokens);
    assert.deepEqual(conversed[0]?.messages, messages);
    assert.deepEqual(conversed[0]?.tools, [tool, ...metaTools()]);
    const words = harness.prompts.agent.metaTools;
    assert.deepEqual(
      metaTools().map((t) => t.description),
      [words.search, words.forge, words.ask],
    );
  });

  it('every structured model call sends exactly the harness prompt', async () => {
    const { llm, requests } = recordingLlm(spec, { needsApi: false }, { tests }, { source }, { source, diagnosis: 'd' });
    const author = createForgeAuthor(llm);
    await author.writeSpec({ need: 'the weather for a city' });
    await author.extractApiSpec({ spec, apiDocs: 'GET /weather' });
    await author.writeTests({ spec, apiSpec });
    await author.writeImplementation({ spec, apiSpec, tests });
    await author.repairImplementation({ spec, apiSpec, tests, source, failures: 'one test failed', attempt: 1 });

    const { forge } = harness.prompts;
    const expected = [
      sent(forge.spec, { need: 'the weather for a city' }),
      sent(forge.api, { spec, apiDocs: 'GET /weather' }),
      sent(forge.tests, { spec, apiSpec }),
      sent(forge.implementation, { spec, apiSpec, tests }),
      sent(forge.repair, { spec, apiSpec, tests, source, failures: 'one test failed', attempt: 1 }),
    ];
    assert.deepEqual(requests.map(asSent), expected);
  });

  it('the policy is within the bounds the harness does not own', () => {
    assert.deepEqual(rankingPolicySchema.parse(harness.policy.ranking), harness.policy.ranking);
    assert.deepEqual(lexicalPolicySchema.parse(harness.policy.lexical), harness.policy.lexical);
    assert.equal(maxRepairsSchema.parse(harness.policy.forge.maxRepairs), harness.policy.forge.maxRepairs);
    assert.equal(
      maxRepairsSchema.safeParse(harness.policy.forge.maxRepairs + 4).success,
      false,
      "the repair cap is not the harness's to raise",
    );
  });

  it('a wait for a person stays between a minute and a week, whatever a patched policy says', () => {
    const withWait = (callWait: string) =>
      policySchema.safeParse({ ...harness.policy, approval: { ...harness.policy.approval, callWait } }).success;
    assert.equal(withWait(harness.policy.approval.callWait), true);
    assert.equal(withWait('7 days'), true);
    assert.equal(withWait('2 weeks'), false, 'a task would hold its worker version for two weeks');
    assert.equal(withWait('10000 hours'), false);
    assert.equal(withWait('5 seconds'), false, 'nobody could read the request in time');
    assert.equal(durationMs('15 minutes'), 900_000);
    assert.equal(durationMs('1h'), 3_600_000);
    assert.equal(durationMs('250ms'), 250);
  });
});
