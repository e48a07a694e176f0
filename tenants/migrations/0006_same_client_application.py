"""OAuth tokens and grants may only name an application of their own client
or a first-party one (no client).

A composite foreign key cannot say "the same client, or none", so a trigger
checks it. It runs with the writer's rights, under RLS: for `sagerock_app`
another client's application is invisible, which the trigger refuses like a
mismatch, so the answer never tells whether the id exists. An application's
own user, when it has one, must belong to the application's client (a
composite key; it is not checked for first-party applications, whose
`tenant_id` is NULL).
"""

from django.db import migrations

from tenants.operations import RunSQLTemplate

TOKEN_TABLES = ("tenants_oauthaccesstoken", "tenants_oauthrefreshtoken", "tenants_oauthgrant", "tenants_oauthidtoken")

GUARD = """
CREATE FUNCTION app.same_client_application() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $fn$
    DECLARE
        application_client bigint;
    BEGIN
        IF NEW.application_id IS NULL THEN
            RETURN NEW;
        END IF;
        SELECT a.tenant_id INTO application_client FROM public.tenants_oauthapplication a WHERE a.id = NEW.application_id;
        IF NOT FOUND OR (application_client IS NOT NULL AND application_client IS DISTINCT FROM NEW.client_id) THEN
            RAISE EXCEPTION '%: application % is not an application of this client', TG_TABLE_NAME, NEW.application_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN NEW;
    END
    $fn$;

REVOKE ALL ON FUNCTION app.same_client_application() FROM PUBLIC;
""" + "".join(
    f"""
CREATE TRIGGER same_client_application
    BEFORE INSERT OR UPDATE OF application_id, client_id ON public.{table}
    FOR EACH ROW EXECUTE FUNCTION app.same_client_application();
"""
    for table in TOKEN_TABLES
) + """
ALTER TABLE public.tenants_oauthapplication ADD CONSTRAINT tenants_oauthapplication_user_id_same_client
    FOREIGN KEY (tenant_id, user_id) REFERENCES public.tenants_user (client_id, id) DEFERRABLE INITIALLY DEFERRED;
"""

GUARD_REVERSE = """
ALTER TABLE public.tenants_oauthapplication DROP CONSTRAINT IF EXISTS tenants_oauthapplication_user_id_same_client;
""" + "".join(f"DROP TRIGGER IF EXISTS same_client_application ON public.{table};\n" for table in TOKEN_TABLES) + """
DROP FUNCTION IF EXISTS app.same_client_application();
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0005_task_queue_guard")]

    operations = [RunSQLTemplate(GUARD, GUARD_REVERSE)]
