"""scripts/dev.py (`make run`, `make test`) with a DATABASE_URL of the
developer's own: `make test` never touches it, `make run` migrates it but
seeds no demo accounts (known passwords) unless SEED_DEMO=1."""

from __future__ import annotations

import importlib.util
import os
import secrets
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.conf import settings

pytestmark = pytest.mark.slow


def load_dev_script():
    spec = importlib.util.spec_from_file_location("dev_script", settings.BASE_DIR / "scripts" / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def connect(dbname: str | None = None, *, alias: str = "default") -> psycopg.Connection:
    config = settings.DATABASES[alias]
    return psycopg.connect(
        host=config["HOST"], port=config["PORT"] or None, user=config["USER"], password=config["PASSWORD"] or None,
        dbname=dbname or config["NAME"], autocommit=True,
    )


@pytest.fixture
def own_database(monkeypatch):
    """An empty database standing in for one the developer points DATABASE_URL at."""
    name = f"sagerock_own_{secrets.token_hex(4)}"
    with connect() as connection:
        connection.execute(f"CREATE DATABASE {name}")
    url = urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}"))
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("SEED_DEMO", raising=False)
    yield name
    with connect() as connection:
        connection.execute(f"DROP DATABASE {name} WITH (FORCE)")


def tables(dbname: str) -> set[str]:
    with connect(dbname) as connection:
        return {row[0] for row in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_make_test_leaves_the_developers_own_database_alone(own_database, capfd):
    load_dev_script().prepare_test_database(dict(os.environ))
    assert tables(own_database) == set()
    output = capfd.readouterr().out
    assert "leaving your DATABASE_URL database (" in output and f"/{own_database})" in output


def test_make_run_migrates_the_developers_own_database_but_seeds_no_demo_accounts(own_database, capfd):
    load_dev_script().prepare_run_database({**os.environ, "SAGEROCK_TESTING": "0"})
    assert "tenants_user" in tables(own_database)
    with connect(own_database, alias="service") as connection:  # bypasses RLS
        assert connection.execute("SELECT count(*) FROM tenants_user").fetchone()[0] == 0
    output = capfd.readouterr().out
    assert "migrating your DATABASE_URL database (" in output and f"/{own_database})" in output
    assert "not seeding demo accounts into it (set SEED_DEMO=1 to seed them)" in output
    assert "Demo logins" not in output
