-- One row per billed model call (every HTTP reply, including replies that failed validation),
-- written by recordLlmUsage in activities/llm.ts. Costs are estimates from domain/pricing.ts.
create table if not exists llm_calls (
  id bigserial primary key,
  workflow_id text,
  activity_id text,
  purpose text not null,
  model text not null,
  input_tokens integer not null,
  output_tokens integer not null,
  cache_creation_tokens integer not null default 0,
  cache_read_tokens integer not null default 0,
  cost_usd numeric(12, 6) not null,
  -- The price-table family used; price_note is set when the model was unknown and priced as another.
  priced_as text not null,
  price_note text,
  created_at timestamptz not null default now()
);
create index if not exists llm_calls_workflow on llm_calls(workflow_id);
create index if not exists llm_calls_created on llm_calls(created_at);
