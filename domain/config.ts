import { z } from 'zod';
import { ConfigError } from './errors.ts';

/**
 * All of Forge's environment configuration, in one schema. Pure: takes an env
 * object, so tests and workflows can build configs without touching process.env.
 */
const port = z.coerce.number().int().min(1).max(65535);
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

  FORGE_TASK_QUEUE: z.string().min(1).default('forge-control'),
  FORGE_SANDBOX_QUEUE: z.string().min(1).default('forge-sandbox'),

  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'a postgres:// URL')
    .optional(),
  FORGE_PGLITE_PORT: port.default(5499),

  DOCKER_HOST: z.string().min(1).optional(),
  FORGE_SANDBOX_IMAGE: z.string().min(1).default('forge-sandbox:1'),
  FORGE_POOL_SIZE: z.coerce.number().int().min(0).max(64).default(2),

  ANTHROPIC_API_KEY: z.string().min(1).optional(),
  ANTHROPIC_BASE_URL: z.string().url().optional(),
  FORGE_MODEL: z.string().min(1).default('claude-sonnet-4-6'),
  FORGE_SCENARIO: z.string().min(1).optional(),
  FORGE_SCRIPTED_MODEL_PORT: port.default(4399),

  /** an embeddings endpoint ({ input, model } → { data: [{ embedding }] }); unset = word search only */
  FORGE_EMBEDDINGS_URL: z.string().url().optional(),
  FORGE_EMBEDDINGS_MODEL: z.string().min(1).default('voyage-3.5'),
  FORGE_EMBEDDINGS_API_KEY: z.string().min(1).optional(),

  FORGE_DAILY_FORGE_BUDGET: z.coerce.number().int().min(0).default(3),
  /** which task queues a worker process serves: control (workflows, LLM, Postgres), sandbox (Docker), or all */
  FORGE_WORKER_ROLE: z.enum(['all', 'control', 'sandbox']).default('all'),
  /** re-verify and version a person's edits to tool folders */
  FORGE_WATCH_TOOLS: boolFlag.default(true),
  /** every promotion, rollback and archive is POSTed here as JSON (services/control/alerts.ts); unset = audit log only */
  FORGE_ALERT_WEBHOOK: z.string().url().optional(),
});

export type ForgeConfig = z.infer<typeof configSchema> & { home: string };

const expectations: Record<string, string> = {
  TEMPORAL_ADDRESS: 'host:port, e.g. localhost:7233',
  DATABASE_URL: 'a postgres:// URL, e.g. postgres://forge:forge@127.0.0.1:5432/forge',
  ANTHROPIC_BASE_URL: 'an http(s) URL',
  FORGE_EMBEDDINGS_URL: 'an http(s) URL, e.g. https://api.voyageai.com/v1/embeddings',
  FORGE_ALERT_WEBHOOK: 'an http(s) URL that accepts a JSON POST, e.g. https://hooks.example.com/forge',
  FORGE_LOG_LEVEL: 'one of debug, info, warn, error',
  TEMPORAL_TLS: 'one of 1, 0, true, false, yes, no',
  FORGE_WATCH_TOOLS: 'one of 1, 0, true, false, yes, no',
  FORGE_WORKER_ROLE: 'one of all, control, sandbox',
};

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
    throw new ConfigError(variable, cleaned[variable], expectations[variable] ?? issue.message);
  }
  return { ...parsed.data, home: parsed.data.FORGE_HOME ?? defaultHome };
}
