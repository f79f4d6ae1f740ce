-- Discovery's statistics, kept up to date as the catalog and its usage change instead of being
-- recomputed by every search (services/catalog/search.ts): at 10,000 tools, ts_stat over every
-- tool, an aggregate over every invocation and a vocabulary built from every description made one
-- search cost about a second. Triggers keep them, so every writer (the store, admin, tests, the
-- evolve cycle's scratch catalogs) is counted without knowing about them.
--   catalog_stats  how many tools discovery sees (listed: with a current version; active: also
--                  status 'active'), and a change counter the vocabulary cache is keyed by
--   tool_lexemes   per lexeme of the search index, how many tools hold it (what ts_stat gave)
--   tool_words     per word of names, descriptions and parameters, how many tools use it: what
--                  a typo is corrected to
--   tool_usage     invocations and successes per tool (every version), for the re-ranking

create table if not exists catalog_stats (
  id int primary key check (id = 1),
  listed int not null default 0,
  active int not null default 0,
  changes bigint not null default 0
);
insert into catalog_stats (id) values (1) on conflict (id) do nothing;

create table if not exists tool_lexemes (
  lexeme text primary key,
  listed int not null default 0,
  active int not null default 0
);

create table if not exists tool_words (
  word text primary key,
  listed int not null default 0,
  active int not null default 0
);

create table if not exists tool_usage (
  tool text primary key,
  invocations bigint not null default 0,
  successes bigint not null default 0
);

-- The words a tool is corrected toward: the same tokens the vocabulary was built from before.
create or replace function forge_tool_words(doc text) returns setof text language sql stable as $$
  select distinct lower(d.token) from ts_debug('english', doc) d
  where d.alias in ('asciiword', 'word', 'hword_asciipart', 'hword_part') and coalesce(array_length(d.lexemes, 1), 0) > 0
$$;

-- One statement's rows in or out of the statistics (sign +1 / -1). Rows without a current version
-- are not searched, so they do not count.
create or replace function forge_discovery_delta(rows_json jsonb, sign int) returns void language plpgsql as $$
begin
  with r as (
    select x.name, x.status, x.search::tsvector as search, x.doc
    from jsonb_to_recordset(rows_json) as x(name text, status text, search text, doc text, listed boolean)
    where x.listed
  )
  update catalog_stats set listed = listed + sign * (select count(*) from r),
                           active = active + sign * (select count(*) from r where status = 'active'),
                           changes = changes + 1
  where id = 1;

  insert into tool_lexemes (lexeme, listed, active)
  select l, sign * count(*), sign * count(*) filter (where x.status = 'active')
  from jsonb_to_recordset(rows_json) as x(status text, search text, listed boolean)
  cross join lateral unnest(tsvector_to_array(x.search::tsvector)) l
  where x.listed
  group by l
  order by l
  on conflict (lexeme) do update set listed = tool_lexemes.listed + excluded.listed, active = tool_lexemes.active + excluded.active;

  insert into tool_words (word, listed, active)
  select w, sign * count(*), sign * count(*) filter (where x.status = 'active')
  from jsonb_to_recordset(rows_json) as x(status text, doc text, listed boolean)
  cross join lateral forge_tool_words(x.doc) w
  where x.listed
  group by w
  order by w
  on conflict (word) do update set listed = tool_words.listed + excluded.listed, active = tool_words.active + excluded.active;
end $$;

-- What of a tools row the statistics read; an update that changes none of it (updated_at, a pin)
-- costs nothing.
create or replace function forge_discovery_rows(t tools) returns jsonb language sql immutable as $$
  select jsonb_build_object('name', t.name, 'status', t.status, 'search', t.search::text,
                            'doc', t.trgm_text || ' ' || t.search_params, 'listed', t.current_version is not null)
$$;

create or replace function forge_tools_stats() returns trigger language plpgsql as $$
declare
  gone jsonb;
  came jsonb;
begin
  if TG_OP = 'INSERT' then
    select jsonb_agg(forge_discovery_rows(n)) into came from new_rows n;
  elsif TG_OP = 'DELETE' then
    select jsonb_agg(forge_discovery_rows(o)) into gone from old_rows o;
  else
    select jsonb_agg(forge_discovery_rows(o)), jsonb_agg(forge_discovery_rows(n)) into gone, came
    from old_rows o join new_rows n on n.name = o.name
    where forge_discovery_rows(o) is distinct from forge_discovery_rows(n);
  end if;
  if gone is not null then perform forge_discovery_delta(gone, -1); end if;
  if came is not null then perform forge_discovery_delta(came, 1); end if;
  return null;
end $$;

drop trigger if exists tools_stats_insert on tools;
create trigger tools_stats_insert after insert on tools referencing new table as new_rows
  for each statement execute function forge_tools_stats();
drop trigger if exists tools_stats_update on tools;
create trigger tools_stats_update after update on tools referencing old table as old_rows new table as new_rows
  for each statement execute function forge_tools_stats();
drop trigger if exists tools_stats_delete on tools;
create trigger tools_stats_delete after delete on tools referencing old table as old_rows
  for each statement execute function forge_tools_stats();

create or replace function forge_usage_stats() returns trigger language plpgsql as $$
begin
  insert into tool_usage (tool, invocations, successes)
  select tool, count(*), count(*) filter (where success) from new_rows group by tool order by tool
  on conflict (tool) do update set invocations = tool_usage.invocations + excluded.invocations,
                                   successes = tool_usage.successes + excluded.successes;
  return null;
end $$;

drop trigger if exists invocations_usage on invocations;
create trigger invocations_usage after insert on invocations referencing new table as new_rows
  for each statement execute function forge_usage_stats();

-- A GIN index's fast-update list is read in full by every search until a vacuum merges it, and
-- PGlite never vacuums on its own: tools are written rarely, searched on every agent turn.
alter index tools_search_gin set (fastupdate = off);
alter index tools_trgm_gin set (fastupdate = off);
select gin_clean_pending_list('tools_search_gin'::regclass), gin_clean_pending_list('tools_trgm_gin'::regclass);

-- What the catalog held before this migration.
delete from tool_lexemes;
delete from tool_words;
update catalog_stats set listed = 0, active = 0;
select forge_discovery_delta(coalesce((select jsonb_agg(forge_discovery_rows(t)) from tools t), '[]'::jsonb), 1);
delete from tool_usage;
insert into tool_usage (tool, invocations, successes)
select tool, count(*), count(*) filter (where success) from invocations group by tool;
