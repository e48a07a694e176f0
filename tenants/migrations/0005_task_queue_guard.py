"""Guard the task queue against SQL run on the app connection.

The queue table (django-tasks-db) holds no client column and is read and
updated by the worker, which runs as `sagerock_app` with no client context.
Without a guard, SQL injected in client A's request could queue a tenant task
for client B, rewrite a queued task's arguments, or send a finished task back
to the queue, and the worker, which holds TENANT_CONTEXT_SECRET, would run it
in B's context. The trigger lets every role except the trusted ones (owner,
staff, service):

- queue only tenant tasks whose `tenant_client_id` is the client their
  transaction has proven (`app.current_client_id()`);
- update a queued row's progress (status, timestamps, results) but never its
  task, arguments or backend, and never move it back to READY.

See tenants/tasks.py for the Python side.
"""

from django.db import migrations

from tenants.operations import RunSQLTemplate

GUARD = """
CREATE FUNCTION app.guard_task_queue() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $fn$
    BEGIN
        IF current_user IN ('{owner}', '{staff}', '{service}') THEN
            RETURN NEW;
        END IF;
        IF TG_OP = 'INSERT' THEN
            IF jsonb_typeof(NEW.args_kwargs -> 'kwargs' -> 'tenant_client_id') IS DISTINCT FROM 'number'
               OR (NEW.args_kwargs -> 'kwargs' ->> 'tenant_client_id') IS DISTINCT FROM app.current_client_id()::text
            THEN
                RAISE EXCEPTION 'a task queued in a client context must be a tenant task for that client'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
        ELSIF NEW.task_path IS DISTINCT FROM OLD.task_path
           OR NEW.args_kwargs IS DISTINCT FROM OLD.args_kwargs
           OR NEW.backend_name IS DISTINCT FROM OLD.backend_name
           OR NEW.id IS DISTINCT FROM OLD.id
           OR (NEW.status = 'READY' AND OLD.status <> 'READY')
        THEN
            RAISE EXCEPTION 'a queued task''s task, arguments and backend cannot change, and it cannot be queued again'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END
    $fn$;

REVOKE ALL ON FUNCTION app.guard_task_queue() FROM PUBLIC;

CREATE TRIGGER guard_task_queue
    BEFORE INSERT OR UPDATE ON public.django_tasks_database_dbtaskresult
    FOR EACH ROW EXECUTE FUNCTION app.guard_task_queue();
"""

GUARD_REVERSE = """
DROP TRIGGER IF EXISTS guard_task_queue ON public.django_tasks_database_dbtaskresult;
DROP FUNCTION IF EXISTS app.guard_task_queue();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0004_tenant_context_proof"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [RunSQLTemplate(GUARD, GUARD_REVERSE)]
