"""Migrations are complete and reversible, RLS operations included. Runs on a
scratch database of its own so the shared test database is not disturbed."""

import os
import subprocess
import sys
import uuid
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connections

pytestmark = [pytest.mark.slow, pytest.mark.django_db(databases=["default"], transaction=True)]


def manage(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True,
        timeout=300,
    )


def test_no_model_change_is_missing_a_migration():
    result = manage({**os.environ}, "makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def test_migrations_apply_and_reverse_cleanly_with_their_policies():
    name = f"sagerock_migrations_{uuid.uuid4().hex[:8]}"
    owner = connections["default"]
    with owner.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        db = owner.settings_dict
        url = f"postgres://{db['USER']}@{quote(db['HOST'], safe='')}:{db['PORT'] or 5432}/{name}"
        env = {**os.environ, "DATABASE_URL": url, "SAGEROCK_TESTING": "0"}
        for args in (("migrate", "--no-input"), ("check_rls",), ("migrate", "tenants", "zero", "--no-input"),
                     ("migrate", "--no-input"), ("check_rls",)):
            result = manage(env, *args)
            assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
    finally:
        with owner.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
