-- One convention for JSON columns: JSONB, as 0001 chose. 0002 and 0003 stored their documents as
-- TEXT; the store now binds every JSON value as JSONB and reads it back through a cast to text,
-- so the same statements serve both backends (SQLite's JSON columns are TEXT, its only type for
-- them). These tables are small next to `events`, which was JSONB from the start.
ALTER TABLE invoices ALTER COLUMN document TYPE JSONB USING document::jsonb;
ALTER TABLE pending_charges ALTER COLUMN charge TYPE JSONB USING charge::jsonb;
ALTER TABLE scheduled_changes ALTER COLUMN addons TYPE JSONB USING addons::jsonb;

-- The listing of every workspace (boot, admin, the bill run's outer loop) runs as `tollgate_app`
-- like everything else: naming itself (`tollgate.listing`) shows it the rows of `workspaces`,
-- and no policy of any other table lets it see anything.
CREATE POLICY workspace_listing ON workspaces FOR SELECT
    USING (current_setting('tollgate.listing', true) = 'workspaces');
