"""Read the live catalog and list every way tenant isolation is broken.

A table holds client data when it has a `client_id` column (or is the client
table itself). Such a table must have RLS enabled and forced, exactly the two
role policies that `tenants.operations.EnableTenantRLS` creates, a NOT NULL
`client_id`, and unique keys that include `client_id`. Every other table must
be on `NO_CLIENT_DATA` with the reason it holds nothing of any client's. No
runtime role may TRUNCATE (it ignores RLS) or run DDL.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import connections

from tenants.operations import (
    APP_POLICY,
    AUTH_LOOKUP_POLICY,
    SHARED_READ_POLICY,
    STAFF_POLICY,
    shared_predicate,
    tenant_predicate,
)

logger = logging.getLogger(__name__)

# Tables that hold no client's data, each with the reason.
NO_CLIENT_DATA: dict[str, str] = {
    "django_migrations": "migration history: schema metadata only",
    "django_content_type": "catalog of installed models",
    "auth_permission": "catalog of model permissions",
    "auth_group": "Django groups are not used (roles are the permission model); stays empty",
    "auth_group_permissions": "Django groups are not used; stays empty",
    "django_admin_log": "not written: AdminSite records changes in the tenant-scoped AuditEvent instead",
}

# Indexes on tenant tables whose first column is not the tenant key, by
# (table, first column), with the reason. Any other such index is a problem:
# a range condition on its column becomes the index condition, RLS removes
# the other clients' rows afterwards, and EXPLAIN ANALYZE's "Rows Removed by
# Filter" counts them, so SQL on the app role could read other clients'
# values (see tenants migration 0014 for emails and slugs). Primary keys on
# `id` are the one unavoidable case: they show counts of ids, not values.
_OPAQUE = "opaque value (random, or a hash of a secret): probing it reveals nothing usable"
_COUNTS = "foreign key on an id: probing it shows only how many rows other clients have per id"
NON_TENANT_LEADING_INDEXES: dict[tuple[str, str], str] = {
    ("tenants_client", "public_id"): _OPAQUE,
    ("tenants_oauthapplication", "client_id"): "the OAuth client identifier: random, and public for the browser app",
    ("tenants_oauthapplication", "client_secret"): _OPAQUE,
    ("tenants_oauthapplication", "user_id"): _COUNTS,
    **{(table, "token_checksum"): _OPAQUE for table in ("tenants_oauthaccesstoken", "tenants_oauthrefreshtoken")},
    ("tenants_oauthrefreshtoken", "token_family"): _OPAQUE,
    ("tenants_oauthgrant", "code"): "random, lives 60 s and is useless without the PKCE verifier",
    ("tenants_oauthidtoken", "jti"): _OPAQUE,
    ("tenants_oauthdevicegrant", "device_code"): _OPAQUE,
    **{
        (table, column): _COUNTS
        for table in ("tenants_oauthaccesstoken", "tenants_oauthrefreshtoken", "tenants_oauthgrant", "tenants_oauthidtoken",
                      "tenants_oauthdevicegrant")
        for column in ("user_id", "application_id")
    },
    ("tenants_oauthaccesstoken", "id_token_id"): _COUNTS,
    ("tenants_oauthaccesstoken", "source_refresh_token_id"): _COUNTS,
    ("tenants_oauthrefreshtoken", "access_token_id"): _COUNTS,
    **{
        ("django_tasks_database_dbtaskresult", column): "the worker's queue indexes: they show how many tasks wait, not whose"
        for column in ("backend_name", "queue_name", "status")
    },
}

# Tables that need a guard trigger, enabled, with the trigger's name.
GUARD_TRIGGERS: dict[str, str] = {
    "django_tasks_database_dbtaskresult": "guard_task_queue",
    "tenants_oauthaccesstoken": "same_client_application",
    "tenants_oauthrefreshtoken": "same_client_application",
    "tenants_oauthgrant": "same_client_application",
    "tenants_oauthidtoken": "same_client_application",
}

# References between tenant tables that a trigger (above), not a composite
# foreign key, keeps within one client, with the reason.
TRIGGER_GUARDED_REFERENCES: dict[tuple[str, str], str] = {
    (table, "application_id"): "the application is the token's client's or a first-party one (no client)"
    for table in ("tenants_oauthaccesstoken", "tenants_oauthrefreshtoken", "tenants_oauthgrant", "tenants_oauthidtoken")
}

# Tables whose tenant key is not `client_id`.
TENANT_KEY_COLUMN: dict[str, str] = {
    "tenants_client": "id",
    # `client_id` there is the OAuth client identifier.
    "tenants_oauthapplication": "tenant_id",
}

# Tenant tables whose app policy also lets every client READ the rows with a
# NULL key (never write them), with the reason.
SHARED_WHEN_NULL: dict[str, str] = {
    "tenants_oauthapplication": "first-party applications (the browser front end) serve every client's users",
}

# Tenant tables whose `client_id` may be NULL, with the reason. NULL rows are
# visible to staff only (the app policy's equality is never true for NULL).
_STAFF_TOKENS = "staff users' tokens and grants belong to no client"
NULLABLE_TENANT_KEY: dict[str, str] = {
    "tenants_user": "staff accounts (super_admin, admin) belong to no client",
    "tenants_auditevent": "platform events (staff accounts) belong to no client",
    "tenants_oauthapplication": "first-party applications belong to no client",
    "tenants_oauthaccesstoken": _STAFF_TOKENS,
    "tenants_oauthrefreshtoken": _STAFF_TOKENS,
    "tenants_oauthgrant": _STAFF_TOKENS,
    "tenants_oauthidtoken": _STAFF_TOKENS,
    "tenants_oauthdevicegrant": _STAFF_TOKENS,
    "django_tasks_database_dbtaskresult": "tasks that are not tenant tasks (queued by staff or the service role)",
}

# Tables the narrow authentication lookup reads (see tenants.auth).
AUTH_LOOKUP_TABLES: dict[str, str] = {
    "tenants_user": "login by email and session restore read the account's owner before a context exists",
    "tenants_oauthaccesstoken": "API authentication resolves a bearer token's owner before a context exists",
    "tenants_oauthrefreshtoken": "the token endpoint resolves a refresh token's owner",
    "tenants_oauthgrant": "the token endpoint resolves an authorization code's owner",
    "tenants_oauthapplication": "the token endpoint resolves a client-credentials application's client",
}

# Unique keys that are deliberately global, with the reason.
_ONE_TO_ONE = "one-to-one link between two rows of the same client (same-client foreign key)"
_RANDOM = "server-generated random value: a conflict reveals nothing, and clients never choose it"
GLOBAL_UNIQUE: dict[tuple[str, str], str] = {
    ("tenants_client", "tenants_client_public_id_key"): "random UUIDs; only staff and operators create clients",
    ("tenants_oauthapplication", "tenants_oauthapplication_client_id_key"): _RANDOM,
    ("tenants_oauthgrant", "tenants_oauthgrant_code_key"): _RANDOM,
    ("tenants_oauthidtoken", "tenants_oauthidtoken_jti_key"): _RANDOM,
    ("tenants_oauthaccesstoken", "tenants_oauthaccesstoken_token_checksum_key"): _RANDOM,
    ("tenants_oauthrefreshtoken", "tenants_oauthrefreshtoken_token_checksum_revoked_7e40e1c4_uniq"): _RANDOM,
    ("tenants_oauthdevicegrant", "tenants_oauthdevicegrant_unique_device_code"): _RANDOM,
    ("tenants_oauthaccesstoken", "tenants_oauthaccesstoken_id_token_id_key"): _ONE_TO_ONE,
    ("tenants_oauthaccesstoken", "tenants_oauthaccesstoken_source_refresh_token_id_key"): _ONE_TO_ONE,
    ("tenants_oauthrefreshtoken", "tenants_oauthrefreshtoken_access_token_id_key"): _ONE_TO_ONE,
}

RUNTIME_ALIASES = ("app", "staff")
FORBIDDEN_TABLE_PRIVILEGES = ("TRUNCATE", "REFERENCES", "TRIGGER")

# Tables where a runtime role has only some of SELECT/INSERT/UPDATE/DELETE
# (tenants migration 0009): (table, alias) -> the table privileges it may
# hold, and the columns it may UPDATE without table-wide UPDATE.
NARROW_GRANTS: dict[tuple[str, str], tuple[set[str], set[str]]] = {
    ("tenants_auditevent", "app"): ({"SELECT", "INSERT"}, set()),
    ("tenants_client", "app"): ({"SELECT"}, {"name"}),
    ("tenants_user", "app"): ({"SELECT"}, {"password", "last_login", "session_epoch"}),
    ("django_admin_log", "app"): (set(), set()),
    ("django_admin_log", "staff"): ({"SELECT"}, set()),
    **{
        (table, alias): ({"SELECT"}, set())
        for table in ("auth_group", "auth_group_permissions", "auth_permission", "django_content_type")
        for alias in ("app", "staff")
    },
}


@dataclass(frozen=True)
class Problem:
    table: str
    problem: str

    def __str__(self) -> str:
        return f"{self.table}: {self.problem}"


def _normalize(expression: str | None) -> str:
    return re.sub(r"\s+", "", expression or "").replace('"', "").lower()


def _deparsed(predicate: str) -> str:
    # PostgreSQL deparses `(SELECT f())` as `( SELECT f() AS f)`.
    return _normalize(
        predicate.replace("(SELECT app.current_client_id())", "(SELECT app.current_client_id() AS current_client_id)")
    )


def _roles() -> dict[str, str]:
    return settings.DB_ROLE_ALIASES


def find_problems(using: str = "app") -> list[Problem]:
    roles = _roles()
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT to_regnamespace('app') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return [Problem("(database)", "not migrated: schema app is missing; run `manage.py migrate`")]
    problems: list[Problem] = _login_role_problems()
    with connections[using].cursor() as cursor:
        cursor.execute(
            """
            SELECT c.oid, c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
            ORDER BY c.relname
            """
        )
        tables = cursor.fetchall()
        cursor.execute(
            """
            SELECT a.attrelid, a.attname, a.attnotnull
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = current_schema() AND a.attnum > 0 AND NOT a.attisdropped
              AND a.attname IN ('client_id', 'tenant_id', 'id')
            """
        )
        columns = cursor.fetchall()
        client_columns = {oid: notnull for oid, name, notnull in columns if name == "client_id"}
        names = {oid: name for oid, name, *_ in [(t[0], t[1]) for t in tables]}
        key_not_null = {(names.get(oid), name): notnull for oid, name, notnull in columns}
        cursor.execute(
            """
            SELECT tablename, policyname, permissive, roles::text[], cmd, qual, with_check
            FROM pg_policies WHERE schemaname = current_schema()
            """
        )
        policies: dict[str, list[tuple]] = {}
        for row in cursor.fetchall():
            policies.setdefault(row[0], []).append(row[1:])
        cursor.execute(
            """
            SELECT c.relname, i.relname,
                   ARRAY(SELECT a.attname FROM unnest(x.indkey) k
                         LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k),
                   x.indisprimary
            FROM pg_index x
            JOIN pg_class c ON c.oid = x.indrelid
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = current_schema() AND x.indisunique
            """
        )
        unique_indexes = cursor.fetchall()
        privileges = {}
        for alias in RUNTIME_ALIASES:
            cursor.execute(
                f"""
                SELECT c.relname, {", ".join(f"has_table_privilege(%s, c.oid, '{p}')" for p in FORBIDDEN_TABLE_PRIVILEGES)}
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
                """,
                [roles[alias]] * len(FORBIDDEN_TABLE_PRIVILEGES),
            )
            privileges[alias] = cursor.fetchall()
        cursor.execute(
            """
            SELECT r.rolname,
                   ARRAY(SELECT n.nspname FROM pg_namespace n
                         WHERE has_schema_privilege(r.rolname, n.oid, 'CREATE') ORDER BY 1),
                   has_database_privilege(r.rolname, current_database(), 'CREATE'),
                   has_database_privilege(r.rolname, current_database(), 'TEMPORARY'),
                   r.rolbypassrls, r.rolsuper,
                   ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                         WHERE m.member = r.oid ORDER BY 1)
            FROM pg_roles r WHERE r.rolname = ANY(%s)
            """,
            [[roles[alias] for alias in RUNTIME_ALIASES + ("service",)]],
        )
        role_rows = cursor.fetchall()
        cursor.execute(
            """
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = current_schema() AND c.relkind = 'v'
              AND NOT coalesce('security_invoker=true' = ANY(c.reloptions), false)
            """
        )
        definer_views = [row[0] for row in cursor.fetchall()]

    runtime_roles = {roles[a] for a in RUNTIME_ALIASES}
    for oid, table, rls_on, rls_forced, owner in tables:
        is_tenant = oid in client_columns or table in TENANT_KEY_COLUMN
        if owner in runtime_roles:
            problems.append(Problem(table, f"owned by runtime role {owner} (it could disable RLS or alter the table)"))
        if not is_tenant:
            if table not in NO_CLIENT_DATA:
                problems.append(Problem(table, "no client_id column and not on the NO_CLIENT_DATA allow-list"))
            continue
        key = TENANT_KEY_COLUMN.get(table, "client_id")
        if not rls_on:
            problems.append(Problem(table, "row level security is not enabled"))
        if not rls_forced:
            problems.append(Problem(table, "row level security is not forced (the owner bypasses it)"))
        if not key_not_null.get((table, key)) and table not in NULLABLE_TENANT_KEY:
            problems.append(Problem(table, f"{key} is nullable"))
        problems.extend(_policy_problems(table, key, policies.get(table, []), roles))

    tenant_tables = {t[1] for t in tables if t[0] in client_columns or t[1] in TENANT_KEY_COLUMN}
    for table, index, columns, is_primary in unique_indexes:
        if table not in tenant_tables or is_primary or (table, index) in GLOBAL_UNIQUE:
            continue
        key = TENANT_KEY_COLUMN.get(table, "client_id")
        if key not in columns:
            shown = ", ".join(c or "<expression>" for c in columns)
            problems.append(Problem(table, f"unique key {index} ({shown}) does not include {key}"))

    for alias, rows in privileges.items():
        for table, *flags in rows:
            for privilege, granted in zip(FORBIDDEN_TABLE_PRIVILEGES, flags, strict=True):
                if granted:
                    problems.append(Problem(table, f"{roles[alias]} has {privilege}"))

    service_role = roles["service"]
    for role_name, create_schemas, create_db, temporary, bypassrls, superuser, member_of in role_rows:
        # Objects a runtime role creates could shadow or wrap ours for the
        # next request on its connection, or for other roles.
        for schema in create_schemas:
            problems.append(Problem(f"(schema {schema})", f"{role_name} may create objects in it"))
        if create_db:
            problems.append(Problem("(database)", f"{role_name} may create schemas in the database"))
        if temporary:
            problems.append(
                Problem("(database)", f"{role_name} may create temporary objects (they outlive a request's transaction)")
            )
        if superuser or (bypassrls and role_name != service_role):
            problems.append(Problem("(role)", f"{role_name} bypasses row level security"))
        if member_of:
            problems.append(Problem("(role)", f"{role_name} is a member of {', '.join(member_of)} (SET ROLE)"))

    for view in definer_views:
        problems.append(Problem(view, "view without security_invoker (it would read with its owner's rights)"))

    problems.extend(_function_problems(using))
    problems.extend(_trigger_problems(using, {name for _, name, *_ in tables}))
    problems.extend(_reference_problems(using, tenant_tables))
    problems.extend(_narrow_grant_problems(using))
    problems.extend(_index_problems(using, tenant_tables))
    return problems


def _index_problems(using: str, tenant_tables: set[str]) -> list[Problem]:
    with connections[using].cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, i.relname, a.attname
            FROM pg_index x
            JOIN pg_class c ON c.oid = x.indrelid
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = x.indkey[0]
            WHERE n.nspname = current_schema() AND NOT x.indisprimary
            ORDER BY 1, 2
            """
        )
        indexes = cursor.fetchall()
    problems = []
    for table, index, first_column in indexes:
        if table not in tenant_tables or first_column == TENANT_KEY_COLUMN.get(table, "client_id"):
            continue
        if first_column is not None and (table, first_column) in NON_TENANT_LEADING_INDEXES:
            continue
        shown = first_column or "an expression"
        problems.append(
            Problem(table, f"index {index} starts with {shown}, not the tenant key (EXPLAIN ANALYZE can probe it)")
        )
    return problems


def _narrow_grant_problems(using: str) -> list[Problem]:
    roles = _roles()
    problems = []
    with connections[using].cursor() as cursor:
        # Ids come from counters shared by every client: a runtime role that
        # may write one could take other clients' next ids (tenants 0017).
        cursor.execute(
            """
            SELECT c.relname, a.attname, r.rolname
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_index x ON x.indrelid = c.oid AND x.indisprimary
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (x.indkey)
            CROSS JOIN pg_roles r
            WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND r.rolname = ANY(%s)
              AND (a.attidentity <> '' OR EXISTS (
                  SELECT 1 FROM pg_attrdef d WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum
                    AND pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%%'))
              AND CASE WHEN a.attisdropped THEN false  -- see _narrow_grant_problems below
                       ELSE has_column_privilege(r.rolname, c.oid, a.attnum, 'INSERT')
                            OR has_column_privilege(r.rolname, c.oid, a.attnum, 'UPDATE') END
            ORDER BY 1, 3
            """,
            [[roles[alias] for alias in RUNTIME_ALIASES]],
        )
        problems += [
            Problem(table, f"{role_name} may write {column} (run app.restrict_id_writes on it)")
            for table, column, role_name in cursor.fetchall()
        ]
        # Sequences: USAGE for inserts, but SELECT would show `last_value`,
        # every client's row count together.
        cursor.execute(
            """
            SELECT c.relname, r.rolname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            CROSS JOIN pg_roles r
            WHERE n.nspname = current_schema() AND c.relkind = 'S' AND r.rolname = ANY(%s)
              AND has_sequence_privilege(r.rolname, c.oid, 'SELECT')
            ORDER BY 1, 2
            """,
            [[roles[alias] for alias in RUNTIME_ALIASES + ("service",)]],
        )
        problems += [Problem(sequence, f"{role_name} may SELECT it (last_value)") for sequence, role_name in cursor.fetchall()]
        for (table, alias), (allowed, update_columns) in NARROW_GRANTS.items():
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
            if not cursor.fetchone()[0]:
                continue
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
                cursor.execute("SELECT has_table_privilege(%s, %s, %s)", [roles[alias], table, privilege])
                if cursor.fetchone()[0] and privilege not in allowed:
                    shown = ", ".join(sorted(allowed)) or "nothing"
                    problems.append(Problem(table, f"{roles[alias]} has {privilege} (allowed: {shown})"))
            cursor.execute(
                """
                SELECT a.attname FROM pg_attribute a
                WHERE a.attrelid = %s::regclass AND a.attnum > 0
                  -- CASE: has_column_privilege fails on a dropped column, and
                  -- AND does not promise to test attisdropped first (nor a
                  -- join condition before a WHERE filter).
                  AND CASE WHEN a.attisdropped THEN false
                           ELSE has_column_privilege(%s, a.attrelid, a.attnum, 'UPDATE') END
                ORDER BY 1
                """,
                [table, roles[alias]],
            )
            extra = [column for (column,) in cursor.fetchall() if column not in update_columns]
            if extra and "UPDATE" not in allowed:
                problems.append(Problem(table, f"{roles[alias]} may UPDATE {', '.join(extra)}"))
    return problems


def _reference_problems(using: str, tenant_tables: set[str]) -> list[Problem]:
    """A plain foreign key is checked without RLS, so a row of client A could
    reference (and so probe for) a row of client B. Every reference from a
    tenant table to another tenant table must be part of a foreign key that
    also matches the two tenant keys, or be guarded by a trigger."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            """
            SELECT src.relname, dst.relname,
                   ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
                   ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                         JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)
            FROM pg_constraint c
            JOIN pg_class src ON src.oid = c.conrelid JOIN pg_class dst ON dst.oid = c.confrelid
            JOIN pg_namespace n ON n.oid = src.relnamespace
            WHERE c.contype = 'f' AND n.nspname = current_schema()
            """
        )
        foreign_keys = cursor.fetchall()
    covered: set[tuple[str, str]] = set()
    plain: list[tuple[str, str, str]] = []
    for table, target, columns, target_columns in foreign_keys:
        if table not in tenant_tables or target not in tenant_tables or target == "tenants_client":
            continue
        key, target_key = TENANT_KEY_COLUMN.get(table, "client_id"), TENANT_KEY_COLUMN.get(target, "client_id")
        pairs = dict(zip(columns, target_columns, strict=True))
        if pairs.get(key) == target_key:
            covered.update((table, column) for column in columns if column != key)
        else:
            plain.extend((table, column, target) for column in columns)
    return [
        Problem(table, f"{column} references {target} without matching the client (no same-client key or guard)")
        for table, column, target in plain
        if (table, column) not in covered and (table, column) not in TRIGGER_GUARDED_REFERENCES
    ]


def _login_role_problems() -> list[Problem]:
    """Each connection must log in as the role its alias names: an `app`
    connection configured with the service role's credentials would bypass
    RLS while every catalog check above still passed. Only the service role
    may bypass RLS, and no role may be a superuser (a superuser ignores RLS,
    FORCE included, and could turn it off)."""
    problems = []
    for alias, expected in _roles().items():
        if alias not in connections.settings:
            continue
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT current_user, r.rolsuper, r.rolbypassrls FROM pg_roles r WHERE r.rolname = current_user"
            )
            actual, superuser, bypassrls = cursor.fetchone()
        label = f"(connection {alias})"
        if actual != expected:
            problems.append(Problem(label, f"logs in as {actual}, not {expected}"))
        if superuser:
            problems.append(Problem(label, f"{actual} is a superuser: it ignores and can disable row level security"))
        elif bypassrls and alias != "service":
            problems.append(Problem(label, f"{actual} bypasses row level security"))
    return problems


def _trigger_problems(using: str, table_names: set[str]) -> list[Problem]:
    problems = []
    with connections[using].cursor() as cursor:
        for table, trigger in GUARD_TRIGGERS.items():
            if table not in table_names:
                continue
            cursor.execute(
                """
                SELECT t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = current_schema() AND c.relname = %s AND t.tgname = %s
                """,
                [table, trigger],
            )
            row = cursor.fetchone()
            if row is None:
                problems.append(Problem(table, f"guard trigger {trigger} is missing"))
            elif row[0] not in ("O", "A"):
                problems.append(Problem(table, f"guard trigger {trigger} is disabled"))
    return problems


def _policy_problems(table: str, key: str, table_policies: list[tuple], roles: dict[str, str]) -> list[Problem]:
    problems = []
    expected_predicate = _deparsed(tenant_predicate(key))
    seen = set()
    for name, permissive, policy_roles, command, qual, with_check in table_policies:
        policy_roles = set(policy_roles)
        if name == APP_POLICY:
            ok = (
                permissive == "PERMISSIVE"
                and policy_roles == {roles["app"]}
                and command == "ALL"
                and _normalize(qual) == expected_predicate
                and _normalize(with_check) == expected_predicate
            )
        elif name == SHARED_READ_POLICY and table in SHARED_WHEN_NULL:
            # Read-only: the shared rows must never be writable by a client.
            ok = (
                permissive == "PERMISSIVE"
                and policy_roles == {roles["app"]}
                and command == "SELECT"
                and _normalize(qual) == _normalize(shared_predicate(key))
                and with_check is None
            )
        elif name == STAFF_POLICY:
            ok = (
                permissive == "PERMISSIVE"
                and policy_roles == {roles["staff"]}
                and command == "ALL"
                and _normalize(qual) == "true"
                and _normalize(with_check) == "true"
            )
        elif name == AUTH_LOOKUP_POLICY and table in AUTH_LOOKUP_TABLES:
            ok = (
                permissive == "PERMISSIVE"
                and policy_roles == {roles["default"]}
                and command == "SELECT"
                and _normalize(qual) == "(session_user<>current_user)"
            )
        else:
            problems.append(Problem(table, f"unexpected policy {name} ({command} to {', '.join(sorted(policy_roles))})"))
            continue
        seen.add(name)
        if not ok:
            shape = f"{command} to {', '.join(sorted(policy_roles))} using {qual} with check {with_check}"
            problems.append(Problem(table, f"policy {name} has another shape: {shape}"))
    required_policies = (APP_POLICY, STAFF_POLICY) + ((SHARED_READ_POLICY,) if table in SHARED_WHEN_NULL else ())
    for required in required_policies:
        if required not in seen and not any(p.problem.startswith(f"policy {required}") for p in problems):
            problems.append(Problem(table, f"missing policy {required}"))
    return problems


# Who may EXECUTE each function in schema `app` (among the runtime roles).
FUNCTION_EXECUTORS: dict[str, set[str]] = {
    "current_client_id": {"app"},
    # Trigger functions: they run for whoever writes the table, never called.
    "guard_task_queue": set(),
    "same_client_application": set(),
    "sync_global_key": set(),
    # Run by migrations (the owner) only.
    "restrict_id_writes": set(),
}
FIXED_SEARCH_PATH = "search_path=pg_catalog, pg_temp"
DEFAULT_EXECUTORS = {"app", "staff"}
SECRET_TABLE = "app.tenant_context_key"
# Tables only the owner may touch (read through SECURITY DEFINER functions),
# with what breaks without them.
OWNER_ONLY_TABLES: dict[str, str] = {
    SECRET_TABLE: "the tenant context cannot be verified",
    "app.global_key": "sign-in emails and client slugs are not unique across clients",
}


def _function_problems(using: str) -> list[Problem]:
    roles = _roles()
    aliases = ("app", "staff", "service")
    problems = []
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"""
            SELECT p.proname, pg_get_userbyid(p.proowner), p.prosecdef, p.proconfig,
                   has_function_privilege('public', p.oid, 'EXECUTE'),
                   {", ".join("has_function_privilege(%s, p.oid, 'EXECUTE')" for _ in aliases)}
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'app'
              AND NOT EXISTS (SELECT 1 FROM pg_depend d
                              WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
            """,
            [roles[alias] for alias in aliases],
        )
        functions = {row[0]: row[1:] for row in cursor.fetchall()}
        owner_only = {}
        for table in OWNER_ONLY_TABLES:
            cursor.execute("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass(%s)", [table])
            row = cursor.fetchone()
            if row is None:
                owner_only[table] = None
                continue
            readers = []
            for alias in aliases:
                # Column grants count: has_table_privilege does not see them.
                cursor.execute(
                    "SELECT has_table_privilege(%s, %s, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') "
                    "OR has_any_column_privilege(%s, %s, 'SELECT, INSERT, UPDATE, REFERENCES')",
                    [roles[alias], table] * 2,
                )
                if cursor.fetchone()[0]:
                    readers.append(roles[alias])
            owner_only[table] = (row[0], readers)
    if "current_client_id" not in functions:
        problems.append(Problem("app.current_client_id()", "function is missing"))
    for table, found in owner_only.items():
        if found is None:
            problems.append(Problem(table, f"missing: {OWNER_ONLY_TABLES[table]}"))
            continue
        table_owner, readers = found
        for reader in readers:
            problems.append(Problem(table, f"{reader} can read or change it"))
        if table_owner != roles["default"]:
            problems.append(Problem(table, f"owned by {table_owner}, not {roles['default']}"))
    for name, (owner, definer, config, public_exec, *role_exec) in functions.items():
        label = f"app.{name}()"
        if owner != roles["default"]:
            problems.append(Problem(label, f"owned by {owner}, not {roles['default']}"))
        if name == "current_client_id" and not definer:
            problems.append(Problem(label, "not SECURITY DEFINER: it could not read the verification keys"))
        search_paths = [c for c in (config or []) if (c or "").startswith("search_path=")]
        if definer and search_paths != [FIXED_SEARCH_PATH]:
            problems.append(Problem(label, f"SECURITY DEFINER without {FIXED_SEARCH_PATH!r}"))
        if public_exec:
            problems.append(Problem(label, "EXECUTE is granted to PUBLIC"))
        expected = FUNCTION_EXECUTORS.get(name, DEFAULT_EXECUTORS)
        granted = {alias for alias, allowed in zip(aliases, role_exec, strict=True) if allowed}
        if granted != expected:
            shown = ", ".join(sorted(roles[a] for a in granted)) or "nobody"
            wanted = ", ".join(sorted(roles[a] for a in expected))
            problems.append(Problem(label, f"EXECUTE granted to {shown}; expected {wanted}"))
    return problems


def format_problems(problems: list[Problem]) -> str:
    width = max([len("table")] + [len(p.table) for p in problems])
    lines = [f"{'table'.ljust(width)}  problem", f"{'-' * width}  {'-' * 7}"]
    lines += [f"{p.table.ljust(width)}  {p.problem}" for p in problems]
    return "\n".join(lines)


class RLSBroken(RuntimeError):
    pass


def refuse_to_start_without_rls() -> None:
    """Called by the WSGI entry point: a deployment with broken isolation
    must not serve."""
    from django.db import DatabaseError, OperationalError

    try:
        try:
            connections["app"].ensure_connection()
        except OperationalError as error:
            # An unreachable database is /healthz's to report, not a reason
            # to crash-loop the web workers (which cannot serve without it).
            logger.warning("Row Level Security not checked at start-up: %s", error.__class__.__name__)
            return
        # The server answers: any error now (another role's login refused, a
        # missing table, a denied read) stops start-up like a problem would.
        problems = find_problems()
    except DatabaseError as error:
        logger.critical("Row Level Security could not be checked; refusing to start: %s", error)
        raise RLSBroken("the Row Level Security check failed; run `manage.py check_rls`") from None
    finally:
        connections.close_all()
    if problems:
        logger.critical("Row Level Security check failed; refusing to start:\n%s", format_problems(problems))
        raise RLSBroken(f"{len(problems)} Row Level Security problem(s); run `manage.py check_rls`")
