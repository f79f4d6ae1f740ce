-- Discovery's posting lists (services/catalog/shortlist.ts): which tools hold each word, so a
-- search reads the tools of a word in order of where the word stands (name, description,
-- parameters) and stops once no tool it has not read could still enter the shortlist, instead of
-- scoring every tool that shares a common word ("list", "record", "date": thousands of the
-- 10,000 generated tools of the bench). Triggers keep them, as 072's statistics.
--   lexeme_postings  per tool and lexeme of its search index, the best field holding it
--                    (1 name = weight A, 2 description = B, 3 parameters = C)
--   word_postings    per tool, the words of its name and description: what a misspelt or
--                    differently inflected request word is trigram-matched through
-- Only listed tools (with a current version) have postings; `active` mirrors status = 'active'.

create table if not exists lexeme_postings (
  tool text not null,
  lexeme text not null,
  field smallint not null,
  active boolean not null,
  primary key (tool, lexeme)
);
create index if not exists lexeme_postings_by_field on lexeme_postings (lexeme, field, tool) include (active);

create table if not exists word_postings (
  tool text not null,
  word text not null,
  active boolean not null,
  primary key (tool, word)
);
create index if not exists word_postings_by_word on word_postings (word, tool) include (active);

-- the vocabulary a request word is trigram-matched against (a few thousand words, not every tool)
create index if not exists tool_words_trgm on tool_words using gin (word gin_trgm_ops) with (fastupdate = off);

create or replace function forge_refresh_postings(names text[]) returns void language sql as $$
  delete from lexeme_postings where tool = any(names);
  delete from word_postings where tool = any(names);
  insert into lexeme_postings (tool, lexeme, field, active)
  select t.name, l.lexeme,
         coalesce((select min(case w when 'A' then 1 when 'B' then 2 when 'C' then 3 else 4 end) from unnest(l.weights) w), 4),
         t.status = 'active'
  from tools t cross join lateral unnest(t.search) l
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
    where (o.search, o.trgm_text, o.status, o.current_version is null)
          is distinct from (n.search, n.trgm_text, n.status, n.current_version is null);
  end if;
  if names is not null then perform forge_refresh_postings(names); end if;
  return null;
end $$;

drop trigger if exists tools_postings_insert on tools;
create trigger tools_postings_insert after insert on tools referencing new table as new_rows
  for each statement execute function forge_tools_postings();
drop trigger if exists tools_postings_update on tools;
create trigger tools_postings_update after update on tools referencing old table as old_rows new table as new_rows
  for each statement execute function forge_tools_postings();
drop trigger if exists tools_postings_delete on tools;
create trigger tools_postings_delete after delete on tools referencing old table as old_rows
  for each statement execute function forge_tools_postings();

-- What the catalog held before this migration.
select forge_refresh_postings(array(select name from tools));
