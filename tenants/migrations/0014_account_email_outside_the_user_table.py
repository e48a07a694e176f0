"""Global email uniqueness moves out of the user table into `app.account_email`.

A unique index on `lower(email)` in `tenants_user` is what made sign-in
emails unique across clients, but any index that does not start with the
tenant key leaks through `EXPLAIN ANALYZE`: a range condition on the email
becomes the index condition, RLS removes the other clients' rows afterwards,
and "Rows Removed by Filter" counts them, so SQL on the app role could read
other clients' users' emails character by character. `app.account_email`
(email -> user) is owned by the owner role and nobody else may read it, so
nobody can EXPLAIN it either; a SECURITY DEFINER trigger keeps it in step
with the user table, and the sign-in lookup reads it.
"""

from django.db import migrations

from tenants.operations import RunSQLTemplate

FORWARDS = """
CREATE TABLE app.account_email (
    email text PRIMARY KEY,
    user_id bigint NOT NULL UNIQUE
);
REVOKE ALL ON app.account_email FROM PUBLIC;

-- The owner is subject to RLS (FORCE); read every account once to fill the table.
ALTER TABLE public.tenants_user NO FORCE ROW LEVEL SECURITY;
INSERT INTO app.account_email (email, user_id) SELECT lower(email), id FROM public.tenants_user;
ALTER TABLE public.tenants_user FORCE ROW LEVEL SECURITY;

CREATE FUNCTION app.sync_account_email() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $fn$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            TRUNCATE app.account_email;
        ELSIF TG_OP = 'DELETE' THEN
            DELETE FROM app.account_email WHERE user_id = OLD.id;
        ELSIF TG_OP = 'INSERT' THEN
            INSERT INTO app.account_email (email, user_id) VALUES (lower(NEW.email), NEW.id);
        ELSIF lower(NEW.email) IS DISTINCT FROM lower(OLD.email) THEN
            UPDATE app.account_email SET email = lower(NEW.email) WHERE user_id = NEW.id;
        END IF;
        RETURN NULL;
    EXCEPTION WHEN unique_violation THEN
        -- No DETAIL: the message must not echo whose the email is.
        RAISE EXCEPTION 'an account with this email already exists' USING ERRCODE = 'unique_violation';
    END
    $fn$;
REVOKE ALL ON FUNCTION app.sync_account_email() FROM PUBLIC;

CREATE TRIGGER sync_account_email
    AFTER INSERT OR UPDATE OF email OR DELETE ON public.tenants_user
    FOR EACH ROW EXECUTE FUNCTION app.sync_account_email();
CREATE TRIGGER sync_account_email_truncate
    AFTER TRUNCATE ON public.tenants_user
    FOR EACH STATEMENT EXECUTE FUNCTION app.sync_account_email();

CREATE OR REPLACE FUNCTION app.auth_identity_by_email(p_email text)
    RETURNS TABLE (user_id bigint, client_id bigint, is_staff boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $fn$
        SELECT u.id, u.client_id, u.role IN ('super_admin', 'admin')
        FROM app.account_email e JOIN public.tenants_user u ON u.id = e.user_id
        WHERE e.email = lower(p_email) AND u.is_active
    $fn$;
"""

BACKWARDS = """
CREATE OR REPLACE FUNCTION app.auth_identity_by_email(p_email text)
    RETURNS TABLE (user_id bigint, client_id bigint, is_staff boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $fn$
        SELECT u.id, u.client_id, u.role IN ('super_admin', 'admin')
        FROM public.tenants_user u
        WHERE lower(u.email) = lower(p_email) AND u.is_active
    $fn$;
DROP TRIGGER IF EXISTS sync_account_email_truncate ON public.tenants_user;
DROP TRIGGER sync_account_email ON public.tenants_user;
DROP FUNCTION app.sync_account_email();
DROP TABLE app.account_email;
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0013_no_writes_to_catalog_tables")]

    operations = [
        RunSQLTemplate(FORWARDS, BACKWARDS),
        migrations.RemoveConstraint(model_name="user", name="tenants_user_email_ci_uniq"),
    ]

