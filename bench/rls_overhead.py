"""What Row Level Security and the verified tenant context cost.

Builds (once) a scratch database `<db>_bench_rls` from the real migrations
and adds a 1,000,000-row tenant table `bench_item` (100 clients x 10,000
rows, interleaved as they would arrive; tenant key (client_id, id)) with the
policies EnableTenantRLS writes. Because the table exists only here, its app
policy's InitPlan chooses, per transaction, between the real
`app.current_client_id()` (HMAC proof verified) and `app.bench_plain_client_id()`
(the plain setting, what the function was before the proof was required), so
both variants run on the same backend against the same heap and index:

and times two tenant-scoped list queries -- the whole list of one client
(10,000 rows) and one API page of it (the newest 50) -- three ways,
interleaved, as medians over many runs:

  verified   app role, context set with proof, RLS filters
  plain      app role, same backend, plain setting, RLS filters
  service    service role (BYPASSRLS) with an explicit WHERE client_id = ...

Usage: .venv/bin/python bench/rls_overhead.py [--runs 400] [--rebuild]
(after `make services`; reads .local/dev.env like manage.py does).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sagerock.settings")

ROWS = 1_000_000
CLIENTS = 100
QUERIES = {
    "list": "SELECT id, title, created_at FROM {table} {where}ORDER BY id DESC",
    "page": "SELECT id, title, created_at FROM {table} {where}ORDER BY id DESC LIMIT 50",
}
LIST_SQL = QUERIES["page"].format(table="{table}", where="")


def scratch_database_url() -> tuple[str, str]:
    import environ

    env = environ.Env()
    dev_env = ROOT / ".local" / "dev.env"
    if dev_env.exists():
        environ.Env.read_env(dev_env, overwrite=False)
    base = env.db_url("DATABASE_URL")
    name = f"{base['NAME']}_bench_rls"
    host = quote(base["HOST"], safe="") if base["HOST"].startswith("/") else base["HOST"]
    password = f":{base['PASSWORD']}" if base.get("PASSWORD") else ""
    url = f"postgres://{base['USER']}{password}@{host}:{base['PORT'] or 5432}/{name}"
    return url, name


def connect(alias: str):
    import psycopg
    from django.db import connections

    settings_dict = connections[alias].settings_dict
    return psycopg.connect(
        host=settings_dict["HOST"], port=settings_dict["PORT"] or 5432, user=settings_dict["USER"],
        password=settings_dict["PASSWORD"] or None, dbname=settings_dict["NAME"], autocommit=False,
    )


def ensure_database(name: str) -> None:
    import psycopg
    from django.db import connections

    owner = dict(connections["default"].settings_dict)
    with psycopg.connect(
        host=owner["HOST"], port=owner["PORT"] or 5432, user=owner["USER"], password=owner["PASSWORD"] or None,
        dbname="postgres", autocommit=True,
    ) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def build(rebuild: bool) -> None:
    from django.core.management import call_command

    from tenants.operations import APP_POLICY, EnableTenantRLS, role, tenant_predicate

    call_command("migrate", verbosity=0)
    with connect("default") as owner:
        exists = owner.execute("SELECT to_regclass('bench_item') IS NOT NULL").fetchone()[0]
        if exists and not rebuild:
            return
        print(f"building two {ROWS:,}-row tenant tables (once; --rebuild to redo) ...", flush=True)
        owner.execute("DROP TABLE IF EXISTS bench_item, bench_item_plain")
        owner.execute(
            "CREATE OR REPLACE FUNCTION app.bench_plain_client_id() RETURNS bigint LANGUAGE sql STABLE "
            "AS $$ SELECT nullif(current_setting('app.client_id', true), '')::bigint $$"
        )
        owner.execute(f"GRANT EXECUTE ON FUNCTION app.bench_plain_client_id() TO {role('app')}")
        owner.execute(
            "CREATE TABLE bench_item (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "client_id bigint NOT NULL, title text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
        )
        for statement in EnableTenantRLS(model_name="bench_item").forwards_sql("bench_item"):
            owner.execute(statement)
        either = tenant_predicate("client_id").replace(
            "app.current_client_id()",
            "CASE WHEN current_setting('bench.mode', true) = 'plain' THEN app.bench_plain_client_id() "
            "ELSE app.current_client_id() END",
        )
        owner.execute(f"DROP POLICY {APP_POLICY} ON bench_item")
        owner.execute(f"CREATE POLICY {APP_POLICY} ON bench_item TO {role('app')} USING {either} WITH CHECK {either}")
        owner.commit()
    with connect("service") as service:
        service.execute(
            "INSERT INTO bench_item (client_id, title) "
            f"SELECT (g % {CLIENTS}) + 1, 'item ' || g FROM generate_series(1, {ROWS}) g"
        )
        service.commit()
    with connect("default") as owner:
        owner.autocommit = True
        owner.execute("VACUUM ANALYZE bench_item")


def timed(fn) -> float:
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / 1000


def server_time(connection, sql: str, params=None) -> float:
    """Planning + execution time inside PostgreSQL, in µs: what RLS and the
    proof add, without the network and scheduler noise of a round trip."""
    plan = connection.execute("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + sql, params).fetchone()[0][0]
    return (plan["Planning Time"] + plan["Execution Time"]) * 1000


def measure(runs: int) -> dict[str, list[float]]:
    from tenants.context_proof import set_transaction_client

    app = connect("app")
    service = connect("service")
    samples: dict[str, list[float]] = {}

    def sample(name: str, value: float) -> None:
        samples.setdefault(name, []).append(value)

    def verified_transaction(shape: str, client_id: int) -> None:
        # The application's own code, so the benchmark measures what it does.
        sample(f"{shape}/set_context", timed(lambda: set_transaction_client(app, client_id)))
        sql = QUERIES[shape].format(table="bench_item", where="")
        sample(f"{shape}/verified", server_time(app, sql))
        sample(f"{shape}/verified_rt", timed(lambda: app.execute(sql).fetchall()))
        app.commit()

    def plain_transaction(shape: str, client_id: int) -> None:
        app.execute(
            "SELECT set_config('app.client_id', %s, true), set_config('bench.mode', 'plain', true)", [str(client_id)]
        )
        sql = QUERIES[shape].format(table="bench_item", where="")
        sample(f"{shape}/plain", server_time(app, sql))
        sample(f"{shape}/plain_rt", timed(lambda: app.execute(sql).fetchall()))
        app.commit()

    def service_query(shape: str, client_id: int) -> None:
        sql = QUERIES[shape].format(table="bench_item", where="WHERE client_id = %s ")
        sample(f"{shape}/service", server_time(service, sql, [client_id]))
        sample(f"{shape}/service_rt", timed(lambda: service.execute(sql, [client_id]).fetchall()))
        service.commit()

    for shape in QUERIES:
        for _ in range(20):  # warm caches and plans
            client_id = random.randint(1, CLIENTS)
            verified_transaction(shape, client_id)
            plain_transaction(shape, client_id)
            service_query(shape, client_id)
    samples.clear()
    for shape in QUERIES:
        shape_runs = runs if shape == "page" else max(runs // 4, 50)
        for _ in range(shape_runs):
            client_id = random.randint(1, CLIENTS)
            steps = [
                lambda: sample(f"{shape}/verified_txn", timed(lambda: verified_transaction(shape, client_id))),  # noqa: B023
                lambda: sample(f"{shape}/plain_txn", timed(lambda: plain_transaction(shape, client_id))),  # noqa: B023
                lambda: service_query(shape, client_id),  # noqa: B023
            ]
            # A random order each time: whichever runs first after another
            # backend's query pays for cold CPU caches.
            random.shuffle(steps)
            for step in steps:
                step()

    set_transaction_client(app, 7)
    plan = app.execute("EXPLAIN (ANALYZE, COSTS OFF) " + LIST_SQL.format(table="bench_item")).fetchall()
    count = app.execute("SELECT count(*) FROM bench_item").fetchone()[0]
    app.rollback()
    print("\nEXPLAIN ANALYZE of the page query, verified context:")
    print("\n".join("  " + row[0] for row in plan))
    print(f"\nrows visible to one client through RLS: {count:,} of {ROWS:,}")
    app.close()
    service.close()
    return samples


def report(samples: dict[str, list[float]]) -> None:
    def median(key):
        return statistics.median(samples[key])

    def p95(key):
        return statistics.quantiles(samples[key], n=20)[-1]

    titles = {"list": "whole list of one client (10,000 rows)", "page": "one API page (newest 50 rows)"}
    for shape in QUERIES:
        runs = len(samples[f"{shape}/verified"])
        print(f"\n{titles[shape]}, {ROWS:,}-row table, {runs} runs each, interleaved")
        print(f"  {'variant':<52}{'median µs':>11}{'p95 µs':>10}")
        for label, key in (
            ("in the server: verified (HMAC-proven context, RLS)", "verified"),
            ("in the server: plain (same backend, plain setting)", "plain"),
            ("in the server: service (BYPASSRLS, WHERE client_id)", "service"),
            ("round trip: verified", "verified_rt"),
            ("round trip: plain", "plain_rt"),
            ("round trip: service", "service_rt"),
            ("setting the verified context (set_transaction_client)", "set_context"),
            ("whole transaction, verified (sets context: 2 trips)", "verified_txn"),
            ("whole transaction, plain (sets context: 1 trip)", "plain_txn"),
        ):
            print(f"  {label:<52}{median(f'{shape}/{key}'):>11.1f}{p95(f'{shape}/{key}'):>10.1f}")
        verified, plain, service = (median(f"{shape}/{k}") for k in ("verified", "plain", "service"))
        print(f"  verification vs plain setting (server time):   {verified / plain - 1:+.1%} ({verified - plain:+.1f} µs)")
        print(f"  verified RLS vs explicit filter: {verified / service - 1:+.1%}")
        print(f"  plain RLS vs explicit filter:    {plain / service - 1:+.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()

    url, name = scratch_database_url()
    os.environ["DATABASE_URL"] = url
    for variable in ("DATABASE_APP_URL", "DATABASE_STAFF_URL", "DATABASE_SERVICE_URL"):
        os.environ.pop(variable, None)
    import django

    django.setup()
    ensure_database(name)
    build(args.rebuild)
    report(measure(args.runs))


if __name__ == "__main__":
    main()
