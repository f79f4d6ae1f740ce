import { z } from 'zod';
import { ConfigError } from './errors.ts';

/**
 * All of Forge's environment configuration, in one schema. Pure: takes an env
 * object, so tests and workflows can build configs without touching process.env.
 */
const port = z.coerce.number().int().min(1).max(65535);

/** Whether the runtime knows this IANA time zone (the Temporal server reads the same tz database). */
function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
const boolFlag = z.enum(['1', '0', 'true', 'false', 'yes', 'no']).transform((v) => v === '1' || v === 'true' || v === 'yes');

export const configSchema = z.object({
  FORGE_HOME: z.string().min(1).optional(),
  FORGE_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),

  TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[^:\s]+:\d+$/, 'host:port')
    .optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS: boolFlag.optional(),
  TEMPORAL_TLS_CERT: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY: z.string().min(1).optional(),
  TEMPORAL_CLI_PATH: z.string().min(1).optional(),
  TEMPORAL_PORT: port.default(7233),
  TEMPORAL_UI_PORT: port.default(8233),
  /** the Temporal UI of a cluster named by TEMPORAL_ADDRESS (e.g. https://cloud.temporal.io), for links to a cycle's page */
  TEMPORAL_UI_URL: z
    .string()
    .url()
    .transform((u) => u.replace(/\/+$/, ''))
    .optional(),

  FORGE_TASK_QUEUE: z.string().min(1).default('forge-control'),
  FORGE_SANDBOX_QUEUE: z.string().min(1).default('forge-sandbox'),

  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'a postgres:// URL')
    .optional(),
  FORGE_PGLITE_PORT: port.default(5499),

  DOCKER_HOST: z.string().min(1).optional(),
  FORGE_SANDBOX_IMAGE: z.string().min(1).default('forge-sandbox:1'),
  /**
   * Warm sandbox containers: a verification takes two at once (its tests and Forge's checks), so two
   * left whatever came next — the forged tool's first call, a repair's verification — to a cold
   * start (~0.3–0.5 s) while the pool refilled. bench/cycles.ts, back-to-back forges: sandboxVerify
   * p50 821 ms with 2, 315–338 ms with 4.
   */
  FORGE_POOL_SIZE: z.coerce.number().int().min(0).max(64).default(4),
  /** how long a tool version's egress network and proxy stay warm after its last call (services/sandbox/egress-pool.ts) */
  FORGE_EGRESS_IDLE_S: z.coerce.number().int().min(1).max(86_400).default(300),

  ANTHROPIC_API_KEY: z.string().min(1).optional(),
  ANTHROPIC_BASE_URL: z.string().url().optional(),
  FORGE_MODEL: z.string().min(1).default('claude-sonnet-4-6'),
  FORGE_SCENARIO: z.string().min(1).optional(),
  FORGE_SCRIPTED_MODEL_PORT: port.default(4399),

  /** `local` (all-MiniLM-L6-v2 in process, the default), an embeddings endpoint ({ input, model } → { data: [{ embedding }] }), or `off` (words only) */
  FORGE_EMBEDDINGS_URL: z.union([z.literal('local'), z.literal('off'), z.string().url()]).default('local'),
  FORGE_EMBEDDINGS_MODEL: z.string().min(1).default('voyage-3.5'),
  FORGE_EMBEDDINGS_API_KEY: z.string().min(1).optional(),
  /** where local models are kept (default: $XDG_CACHE_HOME/forge/models, or ~/.cache/forge/models) */
  FORGE_MODELS_DIR: z.string().min(1).optional(),

  FORGE_DAILY_FORGE_BUDGET: z.coerce.number().int().min(0).default(3),
  /** which task queues a worker process serves: control (workflows, LLM, Postgres), sandbox (Docker), or all */
  FORGE_WORKER_ROLE: z.enum(['all', 'control', 'sandbox']).default('all'),
  /** re-verify and version a person's edits to tool folders */
  FORGE_WATCH_TOOLS: boolFlag.default(true),
  /** every promotion, rollback and archive is POSTed here as JSON (services/control/alerts.ts); unset = audit log only */
  FORGE_ALERT_WEBHOOK: z.string().url().optional(),

  /** self-evolution (issue 11): when the nightly curation runs (a cron line, read in FORGE_CURATION_TZ), what it reads, how many evolve cycles a night */
  FORGE_CURATION_CRON: z
    .string()
    .trim()
    .regex(/^(@(yearly|annually|monthly|weekly|daily|hourly)|(\S+\s+){4}\S+)$/, 'a cron line')
    .default('0 3 * * *'),
  FORGE_CURATION_TZ: z.string().min(1).refine(validTimeZone, 'an IANA time zone').default('UTC'),
  FORGE_CURATION_WINDOW_HOURS: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 30)
    .default(24),
  FORGE_EVOLVE_MAX_BATCHES: z.coerce.number().int().min(0).max(20).default(3),
  /**
   * self-evolution, part 2 (issue 12): where `forge up` runs the control worker (a container from the
   * tree's worker image, or a host process), the worker deployment it belongs to, the build id a
   * versioned worker serves as (set by forge up for its containers), and the consent and probe policy
   */
  FORGE_CONTROL_WORKER: z.enum(['container', 'host']).default('container'),
  FORGE_DEPLOYMENT: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,100}$/, 'letters, digits, - and _')
    .optional(),
  FORGE_BUILD_ID: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,100}$/, 'letters, digits, - and _')
    .optional(),
  FORGE_CONSENT_TIMEOUT_S: z.coerce
    .number()
    .int()
    .min(1)
    .default(24 * 3600),
  FORGE_PROBE_WINDOW_S: z.coerce.number().int().min(1).default(600),
  FORGE_PROBE_INTERVAL_S: z.coerce.number().int().min(1).default(30),
  FORGE_PROBE_PASSES: z.coerce.number().int().min(1).default(3),

  /** Forge's MCP server over Streamable HTTP (forge up): on or off, where, and the bearer token a client must send */
  FORGE_MCP_HTTP: boolFlag.default(true),
  FORGE_MCP_HOST: z.string().min(1).default('127.0.0.1'),
  FORGE_MCP_PORT: port.default(8235),
  /** unset: forge up generates one into $FORGE_HOME/mcp-token */
  FORGE_MCP_TOKEN: z.string().min(16, 'at least 16 characters').max(512).optional(),

  /** the web dashboard (forge up / forge dashboard): on or off and where; it takes the MCP endpoint's bearer token */
  FORGE_DASHBOARD: boolFlag.default(true),
  FORGE_DASHBOARD_HOST: z.string().min(1).default('127.0.0.1'),
  FORGE_DASHBOARD_PORT: port.default(8234),
});

export type ForgeConfig = z.infer<typeof configSchema> & { home: string };

const expectations: Record<string, string> = {
  TEMPORAL_ADDRESS: 'host:port, e.g. localhost:7233',
  DATABASE_URL: 'a postgres:// URL, e.g. postgres://forge:forge@127.0.0.1:5432/forge',
  ANTHROPIC_BASE_URL: 'an http(s) URL',
  FORGE_EMBEDDINGS_URL:
    'local (all-MiniLM-L6-v2, in process, offline: the default), off (search by words only) or an http(s) URL, e.g. https://api.voyageai.com/v1/embeddings',
  FORGE_ALERT_WEBHOOK: 'an http(s) URL that accepts a JSON POST, e.g. https://hooks.example.com/forge',
  FORGE_LOG_LEVEL: 'one of debug, info, warn, error',
  TEMPORAL_TLS: 'one of 1, 0, true, false, yes, no',
  FORGE_WATCH_TOOLS: 'one of 1, 0, true, false, yes, no',
  FORGE_WORKER_ROLE: 'one of all, control, sandbox',
  FORGE_CURATION_CRON: "a cron line of five fields (minute hour day-of-month month day-of-week), e.g. '0 3 * * *', or @daily",
  FORGE_CURATION_TZ: 'an IANA time zone, e.g. UTC or Europe/Berlin',
  FORGE_CURATION_WINDOW_HOURS: 'a whole number of hours from 1 to 720',
  FORGE_EVOLVE_MAX_BATCHES: 'a whole number from 0 (curate, start no evolve cycle) to 20',
  FORGE_CONTROL_WORKER: 'container (the default when Docker is available) or host',
  FORGE_MCP_HTTP: 'one of 1, 0, true, false, yes, no',
  FORGE_MCP_TOKEN: 'a secret of at least 16 characters, e.g. the output of: openssl rand -hex 32',
  FORGE_DASHBOARD: 'one of 1, 0, true, false, yes, no',
};

/**
 * What a number setting takes, read from its own schema (its bounds and whether it is whole), so
 * the message says "a whole number from 0 to 64" rather than zod's words about NaN.
 */
function numberExpectation(variable: string): string | undefined {
  let field = configSchema.shape[variable as keyof typeof configSchema.shape] as z.ZodType | undefined;
  while (field instanceof z.ZodDefault || field instanceof z.ZodOptional) field = field.unwrap() as z.ZodType;
  if (!(field instanceof z.ZodNumber)) return undefined;
  const kind = field.isInt ? 'a whole number' : 'a number';
  const { minValue: min, maxValue: max } = field;
  const bounded = (n: number | null): n is number => n !== null && Number.isFinite(n) && Math.abs(n) < Number.MAX_SAFE_INTEGER;
  if (bounded(min) && bounded(max)) return `${kind} from ${min} to ${max}`;
  if (bounded(min)) return `${kind} of at least ${min}`;
  return bounded(max) ? `${kind} of at most ${max}` : kind;
}

const SECRETS = new Set(['TEMPORAL_API_KEY', 'ANTHROPIC_API_KEY', 'FORGE_EMBEDDINGS_API_KEY', 'FORGE_MCP_TOKEN']);

/** Parses the environment; a wrong value names the variable, the value and what is expected. */
export function loadConfig(env: Record<string, string | undefined>, defaultHome: string): ForgeConfig {
  // Empty strings mean "unset" — that is how people clear a variable in a shell.
  const cleaned = Object.fromEntries(
    Object.keys(configSchema.shape)
      .map((k) => [k, env[k]] as const)
      .filter(([, v]) => v !== undefined && v !== ''),
  );
  const parsed = configSchema.safeParse(cleaned);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const variable = String(issue.path[0]);
    // A secret is never echoed back, even a wrong one: it may be a real key pasted into the wrong variable.
    const value = SECRETS.has(variable) ? `(${String(cleaned[variable]).length} characters, not shown)` : cleaned[variable];
    throw new ConfigError(variable, value, expectations[variable] ?? numberExpectation(variable) ?? issue.message);
  }
  return { ...parsed.data, home: parsed.data.FORGE_HOME ?? defaultHome };
}
