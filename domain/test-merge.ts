/**
 * Growing a tool's test suite without touching what it already holds: the existing tool.test.ts
 * stays byte for byte (below the merged imports), and a rewrite's new tests follow inside their own
 * describe block, so their top-level names cannot clash with the old ones. Pure.
 */

interface ImportStatement {
  text: string;
  specifier: string;
  typeOnly: boolean;
  named: string[] | null;
}

const IMPORT_RE = /^\s*import\s+(type\s+)?([\s\S]*?)\s+from\s+['"]([^'"]+)['"];?[ \t]*$/gm;

function splitImports(source: string): { imports: ImportStatement[]; body: string } {
  const imports: ImportStatement[] = [];
  const body = source.replace(IMPORT_RE, (text, typeOnly: string | undefined, clause: string, specifier: string) => {
    const named = /^\{([\s\S]*)\}$/.exec(clause.trim());
    imports.push({
      text: text.trim(),
      specifier,
      typeOnly: Boolean(typeOnly),
      named: named
        ? named[1]!
            .split(',')
            .map((n) => n.trim().replace(/\s+/g, ' '))
            .filter(Boolean)
        : null,
    });
    return '';
  });
  return { imports, body: body.replace(/^\s*\n/, '') };
}

const localName = (binding: string) =>
  binding
    .replace(/^type\s+/, '')
    .split(' as ')
    .pop()!
    .trim();

export class TestMergeError extends Error {}

/** The old suite plus the new tests, as one tool.test.ts; throws TestMergeError when their imports cannot be reconciled. */
export function mergeTestFiles(existing: string, added: string, title: string): string {
  if (!added.trim()) return existing;
  const old = splitImports(existing);
  const extra = splitImports(added);
  const merged = new Map<string, ImportStatement>();
  const other: string[] = [];
  const bound = new Map<string, string>();
  const bind = (name: string, from: string) => {
    const was = bound.get(name);
    if (was !== undefined && was !== from) throw new TestMergeError(`both files bind "${name}", from '${was}' and from '${from}'`);
    bound.set(name, from);
  };
  for (const imp of [...old.imports, ...extra.imports, { text: '', specifier: 'node:test', typeOnly: false, named: ['describe'] }]) {
    if (!imp.named) {
      if (!other.includes(imp.text) && imp.text) other.push(imp.text);
      continue;
    }
    const key = `${imp.typeOnly ? 'type ' : ''}${imp.specifier}`;
    const have = merged.get(key) ?? { ...imp, named: [] };
    for (const n of imp.named) {
      bind(localName(n), imp.specifier);
      if (!have.named!.some((h) => localName(h) === localName(n))) have.named!.push(n);
    }
    merged.set(key, have);
  }
  const lines = [
    ...[...merged.values()].map((i) => `import ${i.typeOnly ? 'type ' : ''}{ ${i.named!.join(', ')} } from '${i.specifier}';`),
    ...other,
  ];
  const indented = extra.body
    .trimEnd()
    .split('\n')
    .map((l) => (l ? `  ${l}` : l))
    .join('\n');
  return `${lines.join('\n')}\n\n${old.body.trimEnd()}\n\ndescribe(${JSON.stringify(title)}, () => {\n${indented}\n});\n`;
}

/**
 * Forge's own test for each regression case, written into the tool's suite so the case travels
 * with the tool's folder: the input, parsed by the tool's own input schema, must run without
 * throwing and give output that fits its output schema. (Whether the output is *right* is the
 * rewriter's tests' business; that it no longer fails is Forge's.)
 */
export function regressionTestFile(cases: readonly { name: string; input: unknown }[]): string {
  if (!cases.length) return '';
  const tests = cases.map(
    (c) => `test(${JSON.stringify(c.name)}, async () => {
  const output = await run(manifest.input.parse(${JSON.stringify(c.input)}), testContext());
  const fits = manifest.output.safeParse(output);
  if (!fits.success) throw new Error(\`the output does not fit manifest.output: \${fits.error.message}\`);
});`,
  );
  return [
    "import { test } from 'node:test';",
    "import { testContext } from '@forge/testkit';",
    "import { manifest, run } from './tool.ts';",
    '',
    ...tests,
    '',
  ].join('\n');
}
