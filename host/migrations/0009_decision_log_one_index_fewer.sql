-- The decision log is written on every request; each index is written with every row. The
-- index on the time alone served only the hourly retention purge, which now goes by the
-- ids: they are time-ordered (UUIDv7 after `dec_`), so the primary key's index finds the old
-- rows as well (store::decisions::purge_older_than).
DROP INDEX decision_log_at;
