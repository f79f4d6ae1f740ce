import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { z } from 'zod';
import { METHOD_FIX, METHOD_OVERRIDE_HEADERS, methodAllowed, READ_METHODS } from '../../../domain/side-effect.ts';
import { type ApiSpec, domainSchema, envVarSchema, toolNameSchema } from '../../../domain/tool.ts';
import type { Finding, SourceFile, StageResult } from '../../../domain/verification.ts';
import { domainAllowed } from '../../../runner/ctx.ts';

/**
 * Stage 1 of tool verification: compile + type-check the tool and its tests with the
 * TypeScript compiler API, then walk the AST for patterns a tool must not use. This is
 * the cheap first layer; the container's own limits are the second, so the rules aim at
 * what an honest (LLM-written) tool gets wrong, and at the obvious ways to escape ctx.
 */

export interface StaticInput {
  /** tool.ts */
  source: string;
  /** tool.test.ts */
  tests?: string;
  /** the name the tool is being forged/registered under; must equal manifest.name */
  manifestName?: string;
  /** api-spec.json: its baseUrl host must be a declared domain */
  apiSpec?: ApiSpec;
}

/** What could be read from `export const manifest = {...}` without running the code. */
export interface StaticManifest {
  name?: string;
  description?: string;
  sideEffect?: string;
  destructive?: boolean;
  network: string[];
  env: string[];
}

export interface StaticAnalysis {
  result: StageResult;
  /** null when tool.ts has no statically readable manifest */
  manifest: StaticManifest | null;
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
// The tool lives in a virtual folder inside the repo, so `zod` resolves from the repo's node_modules.
const VIRTUAL_DIR = path.join(repoRoot, '.forge-verify');
const TOOL_PATH = path.join(VIRTUAL_DIR, 'tool.ts');
const TESTS_PATH = path.join(VIRTUAL_DIR, 'tool.test.ts');
const CONTRACT_PATH = path.join(VIRTUAL_DIR, '__contract__.ts');

const TOOL_IMPORTS = new Set(['zod', '@forge/tool', '@forge/testkit']);
const TEST_IMPORTS = new Set([...TOOL_IMPORTS, 'node:test', 'node:assert', 'node:assert/strict', './tool.ts']);

/** Modules that start processes, threads or evaluate code: each gets its own rule. */
const CODE_EXEC_MODULES: Record<string, string> = {
  child_process: 'child-process',
  cluster: 'child-process',
  worker_threads: 'worker-threads',
  vm: 'vm',
};
/** Node built-ins that do I/O (or reach native code) behind ctx's back. */
const IO_MODULES = new Set([
  'fs',
  'fs/promises',
  'net',
  'http',
  'https',
  'http2',
  'dns',
  'dns/promises',
  'tls',
  'dgram',
  'inspector',
  'inspector/promises',
  'module',
  'process',
  'v8',
  'wasi',
  'os',
  'readline',
  'readline/promises',
  'repl',
  'trace_events',
]);
/** Global values that do I/O; a tool gets these through ctx instead. */
const IO_GLOBALS: Record<string, string> = {
  fetch: 'global fetch bypasses the declared-domain check: use ctx.fetch',
  XMLHttpRequest: 'XMLHttpRequest bypasses ctx: use ctx.fetch',
  WebSocket: 'WebSocket bypasses ctx: tools may only do HTTP through ctx.fetch',
  EventSource: 'EventSource bypasses ctx: use ctx.fetch',
  navigator: 'navigator is not part of the tool contract: use ctx',
};
const GLOBAL_OBJECTS = new Set(['globalThis', 'global', 'window', 'self']);
const PROCESS_INTERNALS = new Set(['binding', '_linkedBinding', 'dlopen', 'getBuiltinModule']);

// ---------------------------------------------------------------------------
// Compiler host: virtual tool files + cached library files.

/**
 * Parsed files are kept between checks, so a check parses only what changed (the tool, its tests)
 * and the new program reuses the previous one's structure and module resolutions (`oldProgram`):
 * lib.d.ts, @types/node and zod (3 MB of declarations, ~2 s to parse cold) never change while we
 * run and are never re-read; Forge's own files (domain/tool.ts, runner/testkit.ts and what they
 * import) are re-read each check, so an edit to them shows up, but re-parsed only when their text
 * changed. What stays per check is the type checker's own work: TypeScript has no incremental
 * checker, a new program always gets a new one.
 */
const parsed = new Map<string, { text: string; sf: ts.SourceFile }>();
const fixedFile = (fileName: string) => fileName.includes(`${path.sep}node_modules${path.sep}`);
/** The last check's program: the next one reuses its unchanged files and resolutions. */
let previousProgram: ts.Program | undefined;

const compilerOptions: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  lib: ['lib.es2022.d.ts'],
  types: ['node'],
  typeRoots: [path.join(repoRoot, 'node_modules', '@types')],
  strict: true,
  noEmit: true,
  allowImportingTsExtensions: true,
  skipLibCheck: true,
  esModuleInterop: true,
  isolatedModules: true,
  paths: {
    '@forge/tool': [path.join(repoRoot, 'domain', 'tool.ts')],
    '@forge/testkit': [path.join(repoRoot, 'runner', 'testkit.ts')],
  },
};

function createHost(virtual: Map<string, string>, reuse: boolean): ts.CompilerHost {
  const base = ts.createCompilerHost(compilerOptions, true);
  return {
    ...base,
    fileExists: (f) => virtual.has(f) || base.fileExists(f),
    // The virtual folder does not exist on disk; module resolution asks before looking inside.
    directoryExists: (d) => d === VIRTUAL_DIR || (base.directoryExists?.(d) ?? ts.sys.directoryExists(d)),
    readFile: (f) => virtual.get(f) ?? base.readFile(f),
    getSourceFile(fileName, languageVersion, onError) {
      const key = `${fileName}\0${typeof languageVersion === 'object' ? languageVersion.languageVersion : languageVersion}`;
      const known = parsed.get(key);
      if (known && fixedFile(fileName)) return known.sf;
      let text = virtual.get(fileName);
      if (text === undefined) {
        try {
          text = base.readFile(fileName);
        } catch (err) {
          onError?.((err as Error).message);
        }
        if (text === undefined) return undefined;
      }
      // The same text gives the same SourceFile object, which is what lets the program reuse it.
      if (reuse && known?.text === text) return known.sf;
      const sf = ts.createSourceFile(fileName, text, languageVersion, true);
      if (reuse || fixedFile(fileName)) parsed.set(key, { text, sf });
      return sf;
    },
    writeFile: () => undefined,
  };
}

/**
 * A third virtual file that assigns the tool's exports to the contract's types, so the
 * compiler itself explains a wrong manifest or run signature. sideEffect is checked as a
 * string here (no `as const` needed) and as a literal by the manifest reader.
 */
const CONTRACT_SOURCE = `
import type { ToolContext } from '@forge/tool';
import * as tool from './tool.ts';
type ContractManifest = {
  name: string;
  description: string;
  sideEffect: string;
  destructive?: boolean;
  permissions: { network?: readonly string[]; env?: readonly string[] };
  input: Schema;
  output: Schema;
};
type Schema = { safeParse(value: unknown): unknown; _zod: { output: unknown; input: unknown } };
export const manifest: ContractManifest = tool.manifest;
type In = typeof tool.manifest.input._zod.output;
type Out = typeof tool.manifest.output._zod.input;
export const run: (input: In, ctx: ToolContext) => Promise<Out> | Out = tool.run;
`;

// ---------------------------------------------------------------------------
// Findings

class FindingSink {
  readonly findings: Finding[] = [];
  constructor(private readonly files: Map<string, { sf: ts.SourceFile; label: SourceFile }>) {}

  at(node: ts.Node, rule: string, message: string): void {
    const entry = this.files.get(node.getSourceFile().fileName);
    if (!entry) return;
    this.atPos(entry.sf, entry.label, node.getStart(entry.sf), rule, message);
  }

  atPos(sf: ts.SourceFile, label: SourceFile, pos: number, rule: string, message: string): void {
    const { line, character } = sf.getLineAndCharacterOfPosition(pos);
    const snippet = (sf.text.split('\n')[line] ?? '').trim().slice(0, 200);
    this.findings.push({ rule, message, file: label, line: line + 1, column: character + 1, snippet });
  }

  whole(label: SourceFile, rule: string, message: string): void {
    this.findings.push({ rule, message, file: label, line: 0, column: 0, snippet: '' });
  }

  sorted(): Finding[] {
    const order: SourceFile[] = ['tool.ts', 'tool.test.ts', 'api-spec.json'];
    return [...this.findings].sort((a, b) => order.indexOf(a.file) - order.indexOf(b.file) || a.line - b.line || a.column - b.column);
  }
}

function diagnosticText(d: ts.Diagnostic): string {
  return `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n').split('\n').slice(0, 4).join(' ').slice(0, 400)}`;
}

// ---------------------------------------------------------------------------
// AST rules

type FileKind = 'tool' | 'tests';

interface RuleContext {
  kind: FileKind;
  checker: ts.TypeChecker;
  sink: FindingSink;
  virtualFiles: Set<string>;
  manifest: StaticManifest | null;
}

/** true when the identifier names a global (lib/@types) or nothing at all, not a local of the tool. */
function isGlobalReference(id: ts.Identifier, rc: RuleContext): boolean {
  const parent = id.parent;
  const symbol =
    ts.isShorthandPropertyAssignment(parent) && parent.name === id
      ? rc.checker.getShorthandAssignmentValueSymbol(parent)
      : rc.checker.getSymbolAtLocation(id);
  const decls = symbol?.declarations ?? [];
  if (decls.length === 0) return true;
  return !decls.some((d) => rc.virtualFiles.has(d.getSourceFile().fileName));
}

/** false for names that are not value references: `x.NAME`, `{ NAME: 1 }`, declarations, labels. */
function isValueReference(id: ts.Identifier): boolean {
  const parent = id.parent as ts.Node & { name?: ts.Node; propertyName?: ts.Node; label?: ts.Node };
  if (ts.isShorthandPropertyAssignment(parent)) return true;
  if (parent.name === id || parent.propertyName === id || parent.label === id) return false;
  if (ts.isQualifiedName(parent)) return false;
  return true;
}

function stringValue(node: ts.Node | undefined): string | undefined {
  if (node && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node))) return node.text;
  return undefined;
}

function normalizeModule(spec: string): string {
  return spec.startsWith('node:') ? spec.slice(5) : spec;
}

function checkModuleSpecifier(spec: ts.Expression, rc: RuleContext): void {
  const name = stringValue(spec);
  if (name === undefined) return;
  const allowed = rc.kind === 'tool' ? TOOL_IMPORTS : TEST_IMPORTS;
  if (allowed.has(name)) return;
  const bare = normalizeModule(name);
  const execRule = CODE_EXEC_MODULES[bare];
  if (execRule) {
    rc.sink.at(spec, execRule, `importing "${name}" runs code outside the sandboxed tool: tools may not start processes, threads or VMs`);
    return;
  }
  if (IO_MODULES.has(bare)) {
    rc.sink.at(
      spec,
      'io-outside-ctx',
      `importing "${name}" does I/O outside ctx: use ctx.fetch for HTTP, ctx.env for configuration, ctx.log for output`,
    );
    return;
  }
  const list = [...allowed].map((m) => `'${m}'`).join(', ');
  const hint = name === './tool' || name === './tool.js' ? " (write './tool.ts')" : '';
  rc.sink.at(
    spec,
    'import-not-allowed',
    `"${name}" cannot be imported${hint}: ${rc.kind === 'tool' ? 'a tool' : 'a test'} may import only ${list}`,
  );
}

function checkGlobalIdentifier(id: ts.Identifier, rc: RuleContext): void {
  const name = id.text;
  const interesting =
    name === 'eval' ||
    name === 'Function' ||
    name === 'require' ||
    name === 'module' ||
    name === 'process' ||
    name === 'WebAssembly' ||
    name in IO_GLOBALS ||
    GLOBAL_OBJECTS.has(name);
  if (!interesting || !isValueReference(id) || !isGlobalReference(id, rc)) return;
  const sink = rc.sink;
  switch (name) {
    case 'eval':
      sink.at(id, 'eval', 'eval runs code from strings: compute the value directly');
      return;
    case 'WebAssembly':
      sink.at(id, 'eval', 'WebAssembly compiles and runs code the checks cannot see');
      return;
    case 'Function':
      sink.at(id, 'function-constructor', 'the Function constructor runs code from strings: write a normal function');
      return;
    case 'require':
    case 'module':
      sink.at(id, 'require', `${name}() loads modules behind the import rules: use a static import of an allowed module`);
      return;
    case 'process':
      checkProcess(id, rc);
      return;
  }
  if (GLOBAL_OBJECTS.has(name)) {
    sink.at(
      id,
      'global-indirection',
      `${name} reaches globals indirectly (e.g. ${name}['fe'+'tch']): a tool uses only ctx and plain language features`,
    );
    return;
  }
  sink.at(id, 'io-outside-ctx', IO_GLOBALS[name] ?? `${name} is not available to tools`);
}

/** process.binding & co. reach native code; everything else on process is I/O outside ctx. */
function checkProcess(id: ts.Identifier, rc: RuleContext): void {
  // `(process as any).binding` is still process.binding.
  let inner: ts.Expression = id;
  while (
    ts.isParenthesizedExpression(inner.parent) ||
    ts.isAsExpression(inner.parent) ||
    ts.isNonNullExpression(inner.parent) ||
    ts.isTypeAssertionExpression(inner.parent) ||
    ts.isSatisfiesExpression(inner.parent)
  )
    inner = inner.parent;
  const parent = inner.parent;
  let member: string | undefined;
  if (ts.isPropertyAccessExpression(parent) && parent.expression === inner) member = parent.name.text;
  if (ts.isElementAccessExpression(parent) && parent.expression === inner) member = stringValue(parent.argumentExpression);
  if (member && PROCESS_INTERNALS.has(member)) {
    rc.sink.at(id, 'process-internals', `process.${member} loads native code: tools may not use it`);
    return;
  }
  const advice: Record<string, string> = {
    env: 'process.env exposes every secret of the runner: read declared variables from ctx.env',
    exit: 'process.exit kills the runner: throw an Error or return a result instead',
    stdout: 'process.stdout bypasses the tool log: use ctx.log',
    stderr: 'process.stderr bypasses the tool log: use ctx.log',
  };
  rc.sink.at(
    id,
    'io-outside-ctx',
    (member && advice[member]) ?? 'process is not part of the tool contract: use ctx (env, fetch, log, signal)',
  );
}

/** `x.constructor` can reach Function (e.g. (async () => {}).constructor('code')); `x.constructor.name` is harmless. */
function checkConstructorAccess(node: ts.PropertyAccessExpression | ts.ElementAccessExpression, rc: RuleContext): void {
  const key = ts.isPropertyAccessExpression(node) ? node.name.text : stringValue(node.argumentExpression);
  if (key !== 'constructor') return;
  const parent = node.parent;
  if (ts.isPropertyAccessExpression(parent) && parent.expression === node && parent.name.text === 'name') return;
  rc.sink.at(node, 'function-constructor', 'reaching .constructor can build functions from strings: use the class or value directly');
}

const URL_RE = /^(?:https?|wss?):\/\/([^/?#:\s@]+)/i;

/** Literals that only describe things (manifest/schema descriptions) are not calls. */
function isDescriptionText(node: ts.Node): boolean {
  const parent = node.parent;
  if (ts.isPropertyAssignment(parent) && parent.initializer === node) {
    const key = parent.name.getText();
    return key === 'description' || key === "'description'" || key === '"description"';
  }
  if (ts.isCallExpression(parent) && ts.isPropertyAccessExpression(parent.expression)) {
    return parent.expression.name.text === 'describe';
  }
  return false;
}

function checkUrlLiteral(node: ts.StringLiteral | ts.NoSubstitutionTemplateLiteral | ts.TemplateHead, rc: RuleContext): void {
  if (rc.kind !== 'tool' || !rc.manifest) return;
  const match = URL_RE.exec(node.text);
  const host = match?.[1];
  // In `https://api.${region}.example.com` the host continues past the template head: not checkable.
  if (!match || !host || (ts.isTemplateHead(node) && match[0].length === node.text.length)) return;
  if (isDescriptionText(node) || domainAllowed(host, rc.manifest.network)) return;
  rc.sink.at(
    node,
    'undeclared-domain',
    `"${host}" is not in manifest.permissions.network (${rc.manifest.network.join(', ') || 'none declared'}): declare it or remove the URL`,
  );
}

/** ctx.env.NAME, ctx.env['NAME'], env.NAME (after `const { env } = ctx`), and `const { NAME } = ctx.env`. */
function envAccessName(node: ts.Node): { name: string; at: ts.Node } | undefined {
  const isEnvObject = (e: ts.Expression): boolean =>
    (ts.isPropertyAccessExpression(e) && e.name.text === 'env' && !(ts.isIdentifier(e.expression) && e.expression.text === 'process')) ||
    (ts.isIdentifier(e) && e.text === 'env');
  if (ts.isPropertyAccessExpression(node) && isEnvObject(node.expression)) return { name: node.name.text, at: node };
  if (ts.isElementAccessExpression(node) && isEnvObject(node.expression)) {
    const name = stringValue(node.argumentExpression);
    return name === undefined ? undefined : { name, at: node };
  }
  return undefined;
}

function checkEnvAccess(node: ts.Node, rc: RuleContext): void {
  if (rc.kind !== 'tool' || !rc.manifest) return;
  const declared = rc.manifest.env;
  const report = (name: string, at: ts.Node) => {
    if (declared.includes(name)) return;
    rc.sink.at(
      at,
      'undeclared-env',
      `ctx.env.${name} is not in manifest.permissions.env (${declared.join(', ') || 'none declared'}): declare it or stop reading it`,
    );
  };
  const access = envAccessName(node);
  if (access) {
    report(access.name, access.at);
    return;
  }
  if (ts.isVariableDeclaration(node) && node.initializer && ts.isObjectBindingPattern(node.name)) {
    const init = node.initializer;
    if (
      !(
        ts.isPropertyAccessExpression(init) &&
        init.name.text === 'env' &&
        !(ts.isIdentifier(init.expression) && init.expression.text === 'process')
      )
    )
      return;
    for (const el of node.name.elements) {
      const key = el.propertyName ?? el.name;
      const name = ts.isIdentifier(key) ? key.text : stringValue(key);
      if (name && !el.dotDotDotToken) report(name, el);
    }
  }
}

/** HTTP method names: a `method` property holding one of these is a request's method. */
const HTTP_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'TRACE', 'PURGE']);

/** The string values an expression can take, when they are literals (a const, either branch of `?:`, `??`, `||`). */
function literalValues(e: ts.Expression, rc: RuleContext, depth = 0): string[] {
  if (depth > 4) return [];
  const node = unwrap(e);
  const text = stringValue(node);
  if (text !== undefined) return [text];
  if (ts.isConditionalExpression(node))
    return [...literalValues(node.whenTrue, rc, depth + 1), ...literalValues(node.whenFalse, rc, depth + 1)];
  if (
    ts.isBinaryExpression(node) &&
    [ts.SyntaxKind.QuestionQuestionToken, ts.SyntaxKind.BarBarToken, ts.SyntaxKind.AmpersandAmpersandToken].includes(
      node.operatorToken.kind,
    )
  )
    return [...literalValues(node.left, rc, depth + 1), ...literalValues(node.right, rc, depth + 1)];
  if (ts.isIdentifier(node)) return constValues(rc.checker.getSymbolAtLocation(node), rc, depth);
  return [];
}

function constValues(symbol: ts.Symbol | undefined, rc: RuleContext, depth: number): string[] {
  const decl = symbol?.declarations?.[0];
  if (!decl || !ts.isVariableDeclaration(decl) || !decl.initializer) return [];
  if (!(ts.getCombinedNodeFlags(decl) & ts.NodeFlags.Const)) return [];
  return literalValues(decl.initializer, rc, depth + 1);
}

function propertyKey(name: ts.PropertyName): string | undefined {
  return ts.isIdentifier(name) || ts.isStringLiteral(name) ? name.text : undefined;
}

/**
 * A `read` tool runs without approval, so it may send only GET, HEAD and OPTIONS: a literal
 * `method: 'POST'` (or a method-override header asking for one) in it is a lie about its side
 * effect. ctx.fetch and the egress proxy refuse such requests at run time too; this says so early.
 */
function checkMethodLiteral(node: ts.Node, rc: RuleContext): void {
  if (rc.kind !== 'tool' || rc.manifest?.sideEffect !== 'read') return;
  let key: string | undefined;
  let values: string[] = [];
  if (ts.isPropertyAssignment(node)) {
    key = propertyKey(node.name);
    if (key !== undefined) values = literalValues(node.initializer, rc);
  } else if (ts.isShorthandPropertyAssignment(node)) {
    key = node.name.text;
    values = constValues(rc.checker.getShorthandAssignmentValueSymbol(node), rc, 0);
  }
  if (key === undefined) return;
  const override = METHOD_OVERRIDE_HEADERS.includes(key.toLowerCase());
  if (key !== 'method' && !override) return;
  for (const value of new Set(values)) {
    const method = value.trim().toUpperCase();
    if (!HTTP_METHODS.has(method) || methodAllowed(method, 'read')) continue;
    const how = override ? `the ${key} header asks for ${method}` : `method '${method}'`;
    rc.sink.at(
      node,
      'side-effect',
      `${how} in a tool that declares sideEffect 'read': a read tool may send only ${READ_METHODS.join(', ')} (ctx.fetch and the egress proxy refuse the rest); ${METHOD_FIX}`,
    );
  }
}

function walk(sf: ts.SourceFile, rc: RuleContext): void {
  const visit = (node: ts.Node): void => {
    // Types do nothing at run time: `typeof fetch` in a type is harmless.
    if (ts.isTypeNode(node) || ts.isInterfaceDeclaration(node) || ts.isTypeAliasDeclaration(node)) return;
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      checkModuleSpecifier(node.moduleSpecifier, rc);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      rc.sink.at(node, 'require', '`import x = require(...)` loads modules behind the import rules: use `import ... from`');
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      rc.sink.at(node, 'dynamic-import', 'dynamic import() loads code the checks cannot see: use a static import of an allowed module');
    } else if (ts.isIdentifier(node)) {
      checkGlobalIdentifier(node, rc);
    } else if (ts.isPropertyAccessExpression(node) || ts.isElementAccessExpression(node)) {
      checkConstructorAccess(node, rc);
    } else if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node) || ts.isTemplateHead(node)) {
      checkUrlLiteral(node, rc);
    }
    checkEnvAccess(node, rc);
    checkMethodLiteral(node, rc);
    ts.forEachChild(node, visit);
  };
  visit(sf);
}

// ---------------------------------------------------------------------------
// Manifest reading

function unwrap(e: ts.Expression): ts.Expression {
  while (ts.isAsExpression(e) || ts.isSatisfiesExpression(e) || ts.isParenthesizedExpression(e) || ts.isTypeAssertionExpression(e))
    e = e.expression;
  return e;
}

function propertyOf(obj: ts.ObjectLiteralExpression, key: string): ts.Expression | undefined {
  for (const p of obj.properties) {
    if (ts.isPropertyAssignment(p) && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name)) && p.name.text === key)
      return unwrap(p.initializer);
  }
  return undefined;
}

function exportedDeclaration(sf: ts.SourceFile, name: string): ts.Node | undefined {
  for (const st of sf.statements) {
    const exported = ts.canHaveModifiers(st) && ts.getModifiers(st)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
    if (ts.isVariableStatement(st)) {
      const decl = st.declarationList.declarations.find((d) => ts.isIdentifier(d.name) && d.name.text === name);
      if (decl && exported) return decl;
    }
    if (ts.isFunctionDeclaration(st) && st.name?.text === name && exported) return st;
    if (ts.isExportDeclaration(st) && st.exportClause && ts.isNamedExports(st.exportClause)) {
      const spec = st.exportClause.elements.find((e) => e.name.text === name);
      if (spec) return spec;
    }
  }
  return undefined;
}

/** Reads the permission lists; a non-literal list is a finding, because reviewers and this stage must see it. */
function literalList(obj: ts.ObjectLiteralExpression, key: 'network' | 'env', sink: FindingSink): string[] {
  const value = propertyOf(obj, key);
  if (!value) return [];
  if (!ts.isArrayLiteralExpression(value)) {
    sink.at(
      value,
      'manifest',
      `manifest.permissions.${key} must be an array of string literals, so permissions can be reviewed without running the tool`,
    );
    return [];
  }
  const out: string[] = [];
  for (const el of value.elements) {
    const s = stringValue(el);
    if (s === undefined) sink.at(el, 'manifest', `manifest.permissions.${key} entries must be string literals`);
    else out.push(s);
  }
  return out;
}

const fieldChecks = {
  name: toolNameSchema,
  domain: domainSchema,
  env: envVarSchema,
  sideEffect: z.enum(['read', 'write']),
};

function readManifest(sf: ts.SourceFile, sink: FindingSink, manifestName?: string): StaticManifest | null {
  const decl = exportedDeclaration(sf, 'manifest');
  if (!decl) {
    sink.whole(
      'tool.ts',
      'contract',
      'tool.ts must `export const manifest = { name, description, sideEffect, permissions, input, output }`',
    );
    return null;
  }
  const init = ts.isVariableDeclaration(decl) && decl.initializer ? unwrap(decl.initializer) : undefined;
  if (!init || !ts.isObjectLiteralExpression(init)) {
    sink.at(
      decl,
      'manifest',
      'manifest must be an object literal (`export const manifest = { ... }`), so its name and permissions can be checked before running',
    );
    return null;
  }
  const m: StaticManifest = { network: [], env: [] };
  const str = (key: string) => stringValue(propertyOf(init, key));
  m.name = str('name');
  m.description = str('description');
  m.sideEffect = str('sideEffect');
  const destructive = propertyOf(init, 'destructive');
  if (destructive?.kind === ts.SyntaxKind.TrueKeyword) m.destructive = true;
  if (destructive?.kind === ts.SyntaxKind.FalseKeyword) m.destructive = false;

  if (m.name === undefined) sink.at(init, 'manifest', 'manifest.name must be a string literal');
  else if (!fieldChecks.name.safeParse(m.name).success)
    sink.at(
      propertyOf(init, 'name')!,
      'manifest',
      `manifest.name "${m.name}" must be snake_case (lower-case letters, digits, _; 2-63 chars, starting with a letter)`,
    );
  else if (manifestName && m.name !== manifestName)
    sink.at(propertyOf(init, 'name')!, 'manifest', `manifest.name is "${m.name}" but the tool is being registered as "${manifestName}"`);
  if (m.sideEffect !== undefined && !fieldChecks.sideEffect.safeParse(m.sideEffect).success) {
    sink.at(propertyOf(init, 'sideEffect')!, 'manifest', `manifest.sideEffect must be 'read' or 'write', not "${m.sideEffect}"`);
  }

  const perms = propertyOf(init, 'permissions');
  if (!perms) {
    sink.at(
      init,
      'manifest',
      'manifest.permissions is missing: declare { network: [...domains], env: [...variables] } (empty arrays when none)',
    );
  } else if (!ts.isObjectLiteralExpression(perms)) {
    sink.at(perms, 'manifest', 'manifest.permissions must be an object literal, so it can be reviewed without running the tool');
  } else {
    m.network = literalList(perms, 'network', sink);
    m.env = literalList(perms, 'env', sink);
    for (const d of m.network)
      if (!fieldChecks.domain.safeParse(d).success)
        sink.at(propertyOf(perms, 'network')!, 'manifest', `"${d}" is not a host name such as api.example.com or *.example.com`);
    for (const e of m.env)
      if (!fieldChecks.env.safeParse(e).success)
        sink.at(propertyOf(perms, 'env')!, 'manifest', `"${e}" is not an UPPER_SNAKE environment variable name`);
  }
  return m;
}

/**
 * The manifest of a tool module, read from its source alone (parsed, not compiled, never run):
 * what the host needs before it hands a tool anything, e.g. which --env variables it declares.
 * Null when tool.ts has no literal `export const manifest = {...}`; `problems` says what is unreadable.
 */
export function readManifestSource(source: string): { manifest: StaticManifest | null; problems: string[] } {
  const sf = ts.createSourceFile(TOOL_PATH, source, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const sink = new FindingSink(new Map([[TOOL_PATH, { sf, label: 'tool.ts' as const }]]));
  const manifest = readManifest(sf, sink);
  return { manifest, problems: sink.findings.map((f) => f.message) };
}

function checkApiSpecHosts(spec: ApiSpec, manifest: StaticManifest, sink: FindingSink): void {
  const host = new URL(spec.baseUrl).hostname;
  if (!domainAllowed(host, manifest.network)) {
    sink.whole(
      'api-spec.json',
      'undeclared-domain',
      `the API's baseUrl host "${host}" is not in manifest.permissions.network (${manifest.network.join(', ') || 'none declared'}): every call to it would be denied`,
    );
  }
  if (spec.auth.envVar && spec.auth.kind !== 'none' && !manifest.env.includes(spec.auth.envVar)) {
    sink.whole(
      'api-spec.json',
      'undeclared-env',
      `the API authenticates with ${spec.auth.envVar}, which is not in manifest.permissions.env`,
    );
  }
}

// ---------------------------------------------------------------------------

function compile(input: StaticInput, reuse: boolean): { program: ts.Program; virtual: Map<string, string> } {
  const virtual = new Map<string, string>([[TOOL_PATH, input.source]]);
  if (input.tests !== undefined) virtual.set(TESTS_PATH, input.tests);
  virtual.set(CONTRACT_PATH, CONTRACT_SOURCE);
  const program = ts.createProgram({
    rootNames: [...virtual.keys()],
    options: compilerOptions,
    host: createHost(virtual, reuse),
    ...(reuse && previousProgram ? { oldProgram: previousProgram } : {}),
  });
  if (reuse) previousProgram = program;
  return { program, virtual };
}

function reportDiagnostics(program: ts.Program, files: Map<string, { sf: ts.SourceFile; label: SourceFile }>, sink: FindingSink): void {
  for (const { sf, label } of files.values()) {
    const syntactic = program.getSyntacticDiagnostics(sf);
    const diags = syntactic.length ? syntactic : program.getSemanticDiagnostics(sf);
    const rule = syntactic.length ? 'syntax' : 'typescript';
    for (const d of diags) {
      if (d.start === undefined) sink.whole(label, rule, diagnosticText(d));
      else sink.atPos(sf, label, d.start, rule, diagnosticText(d));
    }
  }
}

/** Contract errors are reported at the tool's export they concern (the contract file is not the user's). */
function reportContract(program: ts.Program, toolSf: ts.SourceFile, sink: FindingSink): void {
  const contractSf = program.getSourceFile(CONTRACT_PATH);
  if (!contractSf) return;
  const diags = program.getSemanticDiagnostics(contractSf);
  for (const d of diags) {
    const line = d.start === undefined ? -1 : contractSf.getLineAndCharacterOfPosition(d.start).line;
    const lineText = contractSf.text.split('\n')[line] ?? '';
    const concerns = lineText.includes('tool.run') ? 'run' : 'manifest';
    const target = exportedDeclaration(toolSf, concerns);
    const message = `${concerns} does not match the tool contract: ${diagnosticText(d)}`;
    if (target) sink.at(target, 'contract', message);
    else if (concerns === 'run') sink.whole('tool.ts', 'contract', 'tool.ts must `export async function run(input, ctx)`');
    // A missing manifest was already reported by readManifest.
  }
}

export interface AnalyzeOptions {
  /**
   * false: a whole new program, Forge's own files parsed again (only node_modules kept), as every
   * check was before issue 14 — bench/verify.ts's baseline. Same verdict either way.
   */
  reuse?: boolean;
}

export async function analyzeStatic(input: StaticInput, options: AnalyzeOptions = {}): Promise<StaticAnalysis> {
  const started = performance.now();
  const { program, virtual } = compile(input, options.reuse ?? true);
  const checker = program.getTypeChecker();
  const files = new Map<string, { sf: ts.SourceFile; label: SourceFile }>();
  const toolSf = program.getSourceFile(TOOL_PATH)!;
  files.set(TOOL_PATH, { sf: toolSf, label: 'tool.ts' });
  const testsSf = program.getSourceFile(TESTS_PATH);
  if (testsSf) files.set(TESTS_PATH, { sf: testsSf, label: 'tool.test.ts' });

  const sink = new FindingSink(files);
  reportDiagnostics(program, files, sink);
  const manifest = readManifest(toolSf, sink, input.manifestName);
  if (!exportedDeclaration(toolSf, 'run')) sink.whole('tool.ts', 'contract', 'tool.ts must `export async function run(input, ctx)`');
  else if (manifest) reportContract(program, toolSf, sink);
  if (manifest && input.apiSpec) checkApiSpecHosts(input.apiSpec, manifest, sink);

  const virtualFiles = new Set(virtual.keys());
  walk(toolSf, { kind: 'tool', checker, sink, virtualFiles, manifest });
  if (testsSf) walk(testsSf, { kind: 'tests', checker, sink, virtualFiles, manifest });

  const findings = sink.sorted();
  const rules = [...new Set(findings.map((f) => f.rule))];
  const result: StageResult = {
    stage: 'static',
    status: findings.length ? 'failed' : 'passed',
    ...(findings.length ? { reason: `${findings.length} finding${findings.length > 1 ? 's' : ''} (${rules.join(', ')})` } : {}),
    findings,
    durationMs: Math.round(performance.now() - started),
  };
  return { result, manifest };
}

/** Stage 1: compile, type-check and lint a tool (and its tests). Never throws for bad tool code. */
export async function staticCheck(input: StaticInput): Promise<StageResult> {
  return (await analyzeStatic(input)).result;
}
