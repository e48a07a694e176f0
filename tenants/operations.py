"""Reversible migration operations for Row Level Security.

They live in migration files (not `post_migrate`), so the schema and its
policies move together and `migrate <app> <earlier>` takes them back.
"""

from django.conf import settings
from django.db.migrations.operations.base import Operation


def role(alias: str) -> str:
    return settings.DB_ROLE_ALIASES[alias]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def tenant_predicate(key_column: str) -> str:
    # The (SELECT ...) wrapper makes PostgreSQL evaluate the function once per
    # statement (an InitPlan), so the predicate stays an indexable equality.
    return f"({_q(key_column)} = (SELECT app.current_client_id()))"


def shared_predicate(key_column: str) -> str:
    return f"({_q(key_column)} IS NULL)"


APP_POLICY = "tenant_isolation"
SHARED_READ_POLICY = "shared_read"
STAFF_POLICY = "staff_all_clients"
AUTH_LOOKUP_POLICY = "auth_lookup"
RUNTIME_TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"


class _SQLOperation(Operation):
    reduces_to_sql = True
    reversible = True

    def state_forwards(self, app_label, state):
        pass

    def forwards_sql(self, table: str) -> list[str]:
        raise NotImplementedError

    def backwards_sql(self, table: str) -> list[str]:
        raise NotImplementedError

    def _table(self, app_label, state) -> str:
        return state.apps.get_model(app_label, self.model_name)._meta.db_table

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        for statement in self.forwards_sql(self._table(app_label, to_state)):
            schema_editor.execute(statement, params=None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        for statement in self.backwards_sql(self._table(app_label, from_state)):
            schema_editor.execute(statement, params=None)


class EnableTenantRLS(_SQLOperation):
    """Turn a table into a tenant table: ENABLE and FORCE RLS, the app-role
    tenant policy, the staff-role policy, and a `(client_id, id)` unique key
    that same-client foreign keys point at.

    `key_column` is `client_id` everywhere except the client table itself,
    whose rows are keyed by `id`, and OAuth applications (`tenant_id`, as
    `client_id` there is the OAuth identifier).

    `shared_when_null` adds a SELECT-only policy that lets the app role read
    (never write, update or delete) rows whose key is NULL: first-party OAuth
    applications that every client's users sign in through.
    """

    def __init__(self, model_name: str, key_column: str = "client_id", shared_when_null: bool = False):
        self.model_name = model_name
        self.key_column = key_column
        self.shared_when_null = shared_when_null

    def deconstruct(self):
        kwargs = {"model_name": self.model_name}
        if self.key_column != "client_id":
            kwargs["key_column"] = self.key_column
        if self.shared_when_null:
            kwargs["shared_when_null"] = True
        return self.__class__.__name__, [], kwargs

    def describe(self):
        return f"Enable tenant Row Level Security on {self.model_name}"

    @property
    def migration_name_fragment(self):
        return f"rls_{self.model_name.lower()}"

    def forwards_sql(self, table):
        t = _q(table)
        predicate = tenant_predicate(self.key_column)
        statements = [
            f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY",
            f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY",
            f"CREATE POLICY {APP_POLICY} ON {t} AS PERMISSIVE FOR ALL TO {role('app')} "
            f"USING {predicate} WITH CHECK {predicate}",
            f"CREATE POLICY {STAFF_POLICY} ON {t} AS PERMISSIVE FOR ALL TO {role('staff')} "
            f"USING (true) WITH CHECK (true)",
        ]
        if self.shared_when_null:
            # SELECT only: a policy FOR ALL would also let the app role
            # UPDATE or DELETE the shared rows (its USING governs those too).
            statements.append(
                f"CREATE POLICY {SHARED_READ_POLICY} ON {t} AS PERMISSIVE FOR SELECT TO {role('app')} "
                f"USING {shared_predicate(self.key_column)}"
            )
        if self.key_column != "id":
            statements.append(f"ALTER TABLE {t} ADD CONSTRAINT {_q(table + '_tenant_key')} UNIQUE ({_q(self.key_column)}, id)")
        # Runtime roles never write the id (tenants migration 0017, which
        # also covers the tables created before the function existed).
        statements.append(
            "DO $$ BEGIN IF to_regprocedure('app.restrict_id_writes(regclass)') IS NOT NULL THEN "
            f"PERFORM app.restrict_id_writes('{t}'::regclass); END IF; END $$"
        )
        return statements

    def backwards_sql(self, table):
        t = _q(table)
        statements = []
        if self.key_column != "id":
            statements.append(f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {_q(table + '_tenant_key')}")
        return statements + [
            f"DROP POLICY IF EXISTS {SHARED_READ_POLICY} ON {t}",
            f"DROP POLICY IF EXISTS {STAFF_POLICY} ON {t}",
            f"DROP POLICY IF EXISTS {APP_POLICY} ON {t}",
            f"ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY",
            f"ALTER TABLE {t} DISABLE ROW LEVEL SECURITY",
        ]


class AllowAuthLookup(_SQLOperation):
    """Let the owner's SECURITY DEFINER lookup functions read a tenant table
    before any client context exists (`tenants.auth` documents the path).

    The policy admits the owner only while `current_user` differs from
    `session_user`, which happens solely inside a SECURITY DEFINER function
    owned by the owner. Connected directly, the owner still sees nothing.
    """

    def __init__(self, model_name: str):
        self.model_name = model_name

    def deconstruct(self):
        return self.__class__.__name__, [], {"model_name": self.model_name}

    def describe(self):
        return f"Allow the narrow authentication lookup on {self.model_name}"

    def forwards_sql(self, table):
        return [
            f"CREATE POLICY {AUTH_LOOKUP_POLICY} ON {_q(table)} AS PERMISSIVE FOR SELECT TO {role('default')} "
            f"USING (session_user <> current_user)"
        ]

    def backwards_sql(self, table):
        return [f"DROP POLICY IF EXISTS {AUTH_LOOKUP_POLICY} ON {_q(table)}"]


class SameClientForeignKey(_SQLOperation):
    """A row may only reference a row of its own client: a composite foreign
    key `(client_id, <field>_id) -> target (client_id, id)`.

    Plain foreign key checks bypass RLS, so without this a client-A row could
    point at (and so probe for) a client-B row.
    """

    def __init__(self, model_name: str, field_name: str):
        self.model_name = model_name
        self.field_name = field_name

    def deconstruct(self):
        return self.__class__.__name__, [], {"model_name": self.model_name, "field_name": self.field_name}

    def describe(self):
        return f"Require {self.model_name}.{self.field_name} to reference a row of the same client"

    def _names(self, app_label, state):
        model = state.apps.get_model(app_label, self.model_name)
        field = model._meta.get_field(self.field_name)
        table = model._meta.db_table
        target = field.related_model._meta.db_table
        return table, field.column, target

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        table, column, target = self._names(app_label, to_state)
        schema_editor.execute(
            f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(f'{table}_{column}_same_client')} "
            f"FOREIGN KEY (client_id, {_q(column)}) REFERENCES {_q(target)} (client_id, id) "
            f"DEFERRABLE INITIALLY DEFERRED"
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        table, column, _ = self._names(app_label, from_state)
        schema_editor.execute(f"ALTER TABLE {_q(table)} DROP CONSTRAINT IF EXISTS {_q(f'{table}_{column}_same_client')}")


class RunSQLTemplate(Operation):
    """RunSQL whose text names the database roles from settings."""

    reduces_to_sql = True
    reversible = True

    def __init__(self, forwards: str, backwards: str):
        self.forwards = forwards
        self.backwards = backwards

    def deconstruct(self):
        return self.__class__.__name__, [], {"forwards": self.forwards, "backwards": self.backwards}

    def state_forwards(self, app_label, state):
        pass

    @staticmethod
    def _render(sql: str) -> str:
        return sql.format(owner=role("default"), app=role("app"), staff=role("staff"), service=role("service"))

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        schema_editor.execute(self._render(self.forwards), params=None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        schema_editor.execute(self._render(self.backwards), params=None)

    def describe(self):
        return "Raw SQL with role names"
