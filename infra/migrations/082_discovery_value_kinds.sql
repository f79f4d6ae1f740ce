-- The kinds of value each tool's parameters take (domain/ranking.ts valueSlots: a host name, a URL,
-- an e-mail or IP address, a time, a currency code, a repository, a version), kept with the tool as
-- the store writes it, and posted beside its words (field 4, lexeme 'value:<kind>') so discovery's
-- shortlist (services/catalog/shortlist.ts) can tell apart tools its words alone tie: "what's in
-- release v5.0.0 of expressjs/express" shares only "release" with 600 of the bench's 10,000 tools,
-- and the one that takes a repository and a version must not be cut for its name's place in the
-- alphabet. Null until read: the catalog a migration finds is read once by infra/migrate.ts after
-- this file (the kinds come from TypeScript, not SQL).

alter table tools add column if not exists value_kinds text[];

create or replace function forge_refresh_postings(names text[]) returns void language sql as $$
  delete from lexeme_postings where tool = any(names);
  delete from word_postings where tool = any(names);
  insert into lexeme_postings (tool, lexeme, field, active)
  select t.name, l.lexeme,
         coalesce((select min(case w when 'A' then 1 when 'B' then 2 when 'C' then 3 else 4 end) from unnest(l.weights) w), 4),
         t.status = 'active'
  from tools t cross join lateral unnest(t.search) l
  where t.name = any(names) and t.current_version is not null;
  -- a word's lexeme never holds ':' (the parser splits there), so these never meet a word's
  insert into lexeme_postings (tool, lexeme, field, active)
  select t.name, 'value:' || k, 4, t.status = 'active'
  from tools t cross join lateral (select distinct unnest(t.value_kinds) as k) v
  where t.name = any(names) and t.current_version is not null;
  insert into word_postings (tool, word, active)
  select t.name, w, t.status = 'active'
  from tools t cross join lateral forge_tool_words(t.trgm_text) w
  where t.name = any(names) and t.current_version is not null;
$$;

create or replace function forge_tools_postings() returns trigger language plpgsql as $$
declare
  names text[];
begin
  if TG_OP = 'INSERT' then
    select array_agg(name) into names from new_rows;
  elsif TG_OP = 'DELETE' then
    select array_agg(name) into names from old_rows;
  else
    -- an update that changes none of what the postings hold (updated_at, a pin) costs nothing
    select array_agg(n.name) into names from old_rows o join new_rows n on n.name = o.name
    where (o.search, o.trgm_text, o.status, o.current_version is null, o.value_kinds)
          is distinct from (n.search, n.trgm_text, n.status, n.current_version is null, n.value_kinds);
  end if;
  if names is not null then perform forge_refresh_postings(names); end if;
  return null;
end $$;
