import type { ForgeConfig } from '../../domain/config.ts';

/**
 * Where the LLM lives. With ANTHROPIC_API_KEY: Anthropic (or ANTHROPIC_BASE_URL). Without one:
 * Forge's scripted model server, so the real SDK code path still runs offline.
 */
export function llmEndpoint(cfg: ForgeConfig): { apiKey: string; baseURL?: string; scripted: boolean } {
  if (cfg.ANTHROPIC_API_KEY) return { apiKey: cfg.ANTHROPIC_API_KEY, baseURL: cfg.ANTHROPIC_BASE_URL, scripted: false };
  return {
    apiKey: 'scripted-model-needs-no-key',
    baseURL: cfg.ANTHROPIC_BASE_URL ?? `http://127.0.0.1:${cfg.FORGE_SCRIPTED_MODEL_PORT}`,
    scripted: true,
  };
}
