from django.core import checks


def _pending_migrations(using: str) -> bool:
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connections[using])
    return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))


@checks.register(checks.Tags.database)
def row_level_security(app_configs, databases=None, **kwargs):
    """Runs with `check --database default` (and so at deploy time); skipped
    while migrations are pending, because `migrate` itself runs it first."""
    if not databases:
        return []
    from django.db import DatabaseError

    from tenants.rls import find_problems

    try:
        if _pending_migrations("default"):
            return []
        problems = find_problems()
    except DatabaseError as error:
        return [checks.Warning(f"Could not read the catalog to check Row Level Security: {error}", id="tenants.W001")]
    return [
        checks.Error(str(problem), hint="Run `manage.py check_rls` for the full table.", id="tenants.E001")
        for problem in problems
    ]
