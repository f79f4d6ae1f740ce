import ts from 'typescript';
import type { DeclaredTests } from '../../../runner/protocol.ts';

/**
 * The tests a test file declares, read from its source with TypeScript's parser on the host, never by
 * running it: the judge in the sandbox then requires every one of them to have run, and refuses
 * reported tests the file does not declare. Counting on the host is what makes the count independent
 * of the judged process; running each test by name in its own process would need the list first
 * anyway, and costs a process start per test.
 *
 * A test counts as declared when its name is a literal and it sits at a fixed place: at the top
 * level, in a describe/suite callback, or as `t.test` in a test's own body, with nothing in between
 * but blocks, statements and awaits. Anything else (a computed name, a call in a loop, a condition, a
 * helper function or another call's callback) is counted as a dynamic site: it may add tests the
 * source cannot name, so with one of those the judge cannot refuse tests as undeclared.
 */
type Kind = 'test' | 'suite';

const NAMED: Record<string, Kind> = { test: 'test', it: 'test', describe: 'suite', suite: 'suite' };
const MODIFIERS = new Set(['skip', 'only', 'todo']);
const TRANSPARENT = new Set([
  ts.SyntaxKind.SourceFile,
  ts.SyntaxKind.Block,
  ts.SyntaxKind.ExpressionStatement,
  ts.SyntaxKind.AwaitExpression,
  ts.SyntaxKind.ParenthesizedExpression,
  ts.SyntaxKind.VariableStatement,
  ts.SyntaxKind.VariableDeclarationList,
  ts.SyntaxKind.VariableDeclaration,
]);

interface Scope {
  path: string[];
  /** the position is reached exactly once whenever the enclosing scope runs */
  fixed: boolean;
  /** inside a test's callback */
  inTest?: boolean;
  /** the name of that test's TestContext parameter, for t.test subtests */
  context?: string;
}

function isNodeTest(spec: ts.Expression): boolean {
  return ts.isStringLiteral(spec) && (spec.text === 'node:test' || spec.text === 'test');
}

/** Local names bound to node:test's functions, and namespace/default names whose members are. */
function imports(file: ts.SourceFile): { direct: Map<string, Kind>; namespaces: Set<string>; unknown: boolean } {
  const direct = new Map<string, Kind>();
  const namespaces = new Set<string>();
  let unknown = false;
  for (const stmt of file.statements) {
    if (!ts.isImportDeclaration(stmt) || !isNodeTest(stmt.moduleSpecifier)) continue;
    const clause = stmt.importClause;
    if (!clause || clause.isTypeOnly) continue;
    // `import test from 'node:test'`: the default export is test(), with describe/it/... as members.
    if (clause.name) {
      direct.set(clause.name.text, 'test');
      namespaces.add(clause.name.text);
    }
    const bindings = clause.namedBindings;
    if (bindings && ts.isNamespaceImport(bindings)) namespaces.add(bindings.name.text);
    if (bindings && ts.isNamedImports(bindings)) {
      for (const el of bindings.elements) {
        const kind = NAMED[(el.propertyName ?? el.name).text];
        if (kind) direct.set(el.name.text, kind);
      }
    }
  }
  // node:test reached another way (import(), require): tests the walk below cannot see.
  const visit = (node: ts.Node): void => {
    if (
      ts.isCallExpression(node) &&
      (node.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(node.expression) && node.expression.text === 'require')) &&
      node.arguments[0] &&
      isNodeTest(node.arguments[0])
    ) {
      unknown = true;
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return { direct, namespaces, unknown };
}

function literalName(arg: ts.Expression | undefined): string | undefined {
  if (arg && (ts.isStringLiteral(arg) || ts.isNoSubstitutionTemplateLiteral(arg))) return arg.text;
  return undefined;
}

function callback(call: ts.CallExpression): ts.ArrowFunction | ts.FunctionExpression | undefined {
  const last = call.arguments[call.arguments.length - 1];
  return last && (ts.isArrowFunction(last) || ts.isFunctionExpression(last)) ? last : undefined;
}

export function declaredTests(source: string): DeclaredTests {
  const file = ts.createSourceFile('tool.test.ts', source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const { direct, namespaces, unknown } = imports(file);
  const tests: DeclaredTests['tests'] = [];
  let dynamic = unknown ? 1 : 0;

  /** The kind of a call: test(...), it.skip(...), nodeTest.describe(...), t.test(...) in a test body. */
  const kindOf = (callee: ts.Expression, scope: Scope): { kind: Kind; subtest: boolean } | undefined => {
    if (ts.isIdentifier(callee)) {
      const kind = direct.get(callee.text);
      return kind ? { kind, subtest: false } : undefined;
    }
    if (!ts.isPropertyAccessExpression(callee)) return undefined;
    const member = callee.name.text;
    const target = callee.expression;
    if (ts.isIdentifier(target)) {
      if (scope.context && target.text === scope.context && member === 'test') return { kind: 'test', subtest: true };
      if (namespaces.has(target.text) && NAMED[member]) return { kind: NAMED[member]!, subtest: false };
      if (MODIFIERS.has(member) && direct.has(target.text)) return { kind: direct.get(target.text)!, subtest: false };
    }
    if (MODIFIERS.has(member) && ts.isPropertyAccessExpression(target)) {
      const inner = kindOf(target, scope);
      return inner;
    }
    return undefined;
  };

  const walk = (node: ts.Node, scope: Scope): void => {
    if (ts.isCallExpression(node)) {
      const found = kindOf(node.expression, scope);
      if (found && (found.subtest || !scope.inTest)) {
        declare(node, found.kind, scope);
        return;
      }
      // test() or describe() inside a test's body: not a place the source fixes, so a dynamic site.
      if (found) dynamic++;
    }
    const fixed = scope.fixed && TRANSPARENT.has(node.kind);
    ts.forEachChild(node, (child) => walk(child, { ...scope, fixed }));
  };

  const declare = (call: ts.CallExpression, kind: Kind, scope: Scope): void => {
    const name = literalName(call.arguments[0]);
    const fixed = scope.fixed && name !== undefined;
    if (kind === 'test') {
      if (fixed) tests.push({ path: scope.path, name: name! });
      else dynamic++;
    }
    const body = callback(call);
    for (const arg of call.arguments) if (arg !== body) walk(arg, { ...scope, fixed: false });
    if (!body) return;
    const param = body.parameters[0]?.name;
    const inner: Scope = {
      path: [...scope.path, name ?? '?'],
      fixed,
      ...(kind === 'test' ? { inTest: true, ...(param && ts.isIdentifier(param) ? { context: param.text } : {}) } : {}),
    };
    // A suite callback runs once, as it is declared; so does a test's body when the test runs.
    if (ts.isBlock(body.body)) walk(body.body, inner);
    else walk(body.body, { ...inner, fixed: false });
  };

  walk(file, { path: [], fixed: true });
  return { tests, dynamic };
}
