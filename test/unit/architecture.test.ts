/**
 * The layering the README describes, checked on every import in the tree: a newcomer can trust the
 * folder names. Parsed with TypeScript itself, so import lines inside template strings (generated
 * tool code) are not mistaken for imports, and type-only imports are told apart.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

type Layer =
  | 'domain'
  | 'harness'
  | 'services'
  | 'activities'
  | 'workflows'
  | 'workers'
  | 'app'
  | 'cli'
  | 'mcp'
  | 'web'
  | 'infra'
  | 'runner'
  | 'scripted-model'
  | 'bench'
  | 'test';

interface Rule {
  /** Folders whose modules this layer may import (itself included when listed). */
  may: Layer[];
  /** Folders it may import for types only (erased at run time). */
  typesFrom?: Layer[];
  /** Packages it must not import (prefix match), with the reason a reader needs. */
  forbiddenPackages?: { prefix: string; why: string }[];
}

const noNode = { prefix: 'node:', why: 'pure code does no I/O (and workflow code must stay deterministic)' };
const noTemporal = { prefix: '@temporalio/', why: 'services are plain libraries; Temporal stays in activities, workflows and workers' };

const RULES: Record<Layer, Rule> = {
  domain: { may: ['domain'], forbiddenPackages: [noNode] },
  harness: { may: ['domain', 'harness'], forbiddenPackages: [noNode, { prefix: '@temporalio/', why: 'the harness is data and policy' }] },
  services: { may: ['domain', 'harness', 'services', 'runner'], forbiddenPackages: [noTemporal] },
  activities: { may: ['domain', 'harness', 'services', 'activities'] },
  workflows: { may: ['domain', 'harness', 'workflows'], typesFrom: ['activities'], forbiddenPackages: [noNode] },
  workers: { may: ['domain', 'harness', 'services', 'activities', 'workflows', 'workers', 'infra'] },
  app: { may: ['domain', 'harness', 'services', 'infra', 'workflows', 'workers', 'app'] },
  // Surfaces: each calls the use cases only, so a rule a person applies is written once.
  cli: { may: ['app', 'cli'] },
  mcp: { may: ['app', 'mcp'] },
  web: { may: ['app', 'web'] },
  infra: { may: ['domain', 'services', 'runner', 'infra'] },
  runner: { may: ['domain', 'runner'] },
  'scripted-model': { may: ['domain', 'services', 'scripted-model'] },
  bench: {
    may: ['domain', 'harness', 'services', 'activities', 'workflows', 'workers', 'app', 'infra', 'runner', 'scripted-model', 'bench'],
  },
  // Tests may reach any layer (the README says so): they prove each one, benches' helpers included.
  test: {
    may: [
      'domain',
      'harness',
      'services',
      'activities',
      'workflows',
      'workers',
      'app',
      'cli',
      'mcp',
      'web',
      'infra',
      'runner',
      'scripted-model',
      'bench',
      'test',
    ],
  },
};

interface Import {
  file: string;
  line: number;
  specifier: string;
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== 'build') out.push(...sourceFiles(rel));
    } else if (entry.name.endsWith('.ts')) out.push(rel);
  }
  return out;
}

function importsOf(file: string, text: string): Import[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: Import[] = [];
  const add = (node: ts.Node, spec: ts.Expression | undefined, typeOnly: boolean) => {
    if (!spec || !ts.isStringLiteral(spec)) return;
    found.push({ file, line: sf.getLineAndCharacterOfPosition(node.getStart()).line + 1, specifier: spec.text, typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const allTypes =
        !!clause &&
        (clause.isTypeOnly ||
          (!clause.name &&
            !!clause.namedBindings &&
            ts.isNamedImports(clause.namedBindings) &&
            clause.namedBindings.elements.length > 0 &&
            clause.namedBindings.elements.every((e) => e.isTypeOnly)));
      add(node, node.moduleSpecifier, allTypes);
    } else if (ts.isExportDeclaration(node)) {
      add(node, node.moduleSpecifier, node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node, node.arguments[0], false);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node, node.argument.literal, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

const layerOf = (rel: string): Layer | undefined => {
  const top = rel.split(path.sep)[0] as Layer;
  return top in RULES ? top : undefined;
};

/** Every import that breaks the rule of its file's layer, as "file:line: what and why". */
function violations(files: { file: string; text: string }[]): string[] {
  const out: string[] = [];
  for (const { file, text } of files) {
    const layer = layerOf(file);
    if (!layer) continue;
    const rule = RULES[layer];
    for (const imp of importsOf(file, text)) {
      const where = `${file}:${imp.line}`;
      if (imp.specifier.startsWith('.')) {
        const target = path.relative(root, path.resolve(root, path.dirname(file), imp.specifier));
        const to = layerOf(target);
        if (!to) continue;
        if (rule.may.includes(to)) continue;
        if (imp.typeOnly && rule.typesFrom?.includes(to)) continue;
        const types = rule.typesFrom?.includes(to) ? ` (types only: write \`import type\`)` : '';
        out.push(`${where}: ${layer}/ may not import ${to}/${types} — '${imp.specifier}'`);
      } else {
        const bad = rule.forbiddenPackages?.find((p) => imp.specifier.startsWith(p.prefix));
        if (bad && !(imp.typeOnly && bad.prefix === noTemporal.prefix))
          out.push(`${where}: ${layer}/ may not import ${imp.specifier}: ${bad.why}`);
      }
    }
  }
  return out;
}

const allFiles = () =>
  (Object.keys(RULES) as Layer[])
    .filter((d) => fs.existsSync(path.join(root, d)))
    .flatMap((d) => sourceFiles(d))
    .map((file) => ({ file, text: fs.readFileSync(path.join(root, file), 'utf8') }));

describe('architecture', () => {
  it('every import follows the layering in the README', () => {
    const files = allFiles();
    assert.ok(files.length > 100, `found only ${files.length} source files: is the root right?`);
    const found = violations(files);
    assert.deepEqual(found, [], `forbidden imports:\n${found.join('\n')}`);
  });

  it('catches a forbidden import, a package a layer must not use, and a workflow importing activity code', () => {
    const found = violations([
      { file: 'services/probe.ts', text: "import { x } from '../activities/index.ts';\nimport { Context } from '@temporalio/activity';\n" },
      {
        file: 'workflows/probe.ts',
        text: "import { createControlActivities } from '../activities/index.ts';\nimport type { ControlActivities } from '../activities/index.ts';\n",
      },
      {
        file: 'cli/probe.ts',
        text: "import { createRegistry } from '../services/catalog/index.ts';\nconst code = `import x from '../activities/index.ts'`;\n",
      },
    ]);
    assert.equal(found.length, 4, found.join('\n'));
    assert.match(found[0]!, /^services\/probe.ts:1: services\/ may not import activities\//);
    assert.match(found[1]!, /^services\/probe.ts:2: .*@temporalio\/activity: services are plain libraries/);
    assert.match(found[2]!, /^workflows\/probe.ts:1: workflows\/ may not import activities\/ \(types only/);
    assert.match(found[3]!, /^cli\/probe.ts:1: cli\/ may not import services\//, 'an import inside a string is not an import');
  });
});
