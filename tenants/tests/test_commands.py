import io
import secrets
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from tenants.context import dangerously_bypass_rls
from tenants.models import AuditEvent, Client, Role, User
from tests.factories import ALL_DATABASES, PASSWORD, make_client, make_user

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)


def run(*args, stdin: str | None = None) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def counts() -> tuple[int, int, int]:
    with dangerously_bypass_rls():
        return Client.objects.count(), User.objects.count(), AuditEvent.objects.count()


def get_user(email: str) -> User:
    with dangerously_bypass_rls():
        return User.objects.select_related("client").get(email=email)


def test_create_client_creates_it_with_products_and_an_audit_event():
    out = run("create_client", "--name", "Lakeside", "--slug", "lakeside", "--products", "schools", "marketing")
    assert "Created client lakeside" in out
    with dangerously_bypass_rls():
        client = Client.objects.get(slug="lakeside")
        assert client.products == ["schools", "marketing"]
        assert AuditEvent.objects.filter(client=client, action="client.created").count() == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--name", "X", "--slug", "bad slug!"], "slug"),
        (["--name", "  ", "--slug", "ok"], "name"),
        (["--name", "X", "--slug", "ok", "--products", "crm"], "Unknown product(s): crm"),
        (["--name", "X", "--slug", "s" * 64], "slug: At most 63 characters (this has 64)"),
        (["--name", "n" * 201, "--slug", "ok"], "name: At most 200 characters (this has 201)"),
        (["--name", "X\x00", "--slug", "ok"], "name: NUL characters are not allowed"),
        (["--name", "X", "--slug", "o\x00k"], "slug"),
    ],
)
def test_create_client_refuses_bad_arguments_and_writes_nothing(args, message):
    before = counts()
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run("create_client", *args)
    assert counts() == before


def test_create_client_refuses_a_duplicate_slug():
    make_client(slug="taken")
    before = counts()
    with pytest.raises(CommandError, match="already exists"):
        run("create_client", "--name", "Other", "--slug", "taken")
    assert counts() == before


def test_create_user_with_no_input_generates_and_prints_a_password_that_works():
    client = make_client(slug="acme")
    out = run("create_user", "--email", "Ops@Acme.test", "--role", "client_admin", "--client", "acme", "--no-input")
    password = out.split("Password: ")[1].strip()
    user = get_user("ops@acme.test")
    assert user.role == Role.CLIENT_ADMIN and user.client == client
    assert user.check_password(password)
    with dangerously_bypass_rls():
        event = AuditEvent.objects.get(action="user.created")
    assert event.client_id == client.pk and password not in str(event.metadata)


def test_create_user_prompts_for_the_password_twice():
    with mock.patch("getpass.getpass", side_effect=["a-long-enough-pass-1", "a-long-enough-pass-1"]):
        out = run("create_user", "--email", "root@staff.test", "--role", "super_admin")
    assert "Password:" not in out
    assert get_user("root@staff.test").check_password("a-long-enough-pass-1")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--email", "x@y.test", "--role", "client_admin", "--client", "nope"], "No client with slug 'nope'"),
        (["--email", "x@y.test", "--role", "wizard"], "Unknown role 'wizard'"),
        (["--email", "x@y.test", "--role", "client_admin"], "client_admin belongs to a client"),
        (["--email", "x@y.test", "--role", "admin", "--client", "acme"], "staff and belongs to no client"),
        (["--email", "not-an-email", "--role", "admin"], "not a valid email"),
        (["--email", "x@y.test", "--role", "admin", "--full-name", "f" * 201], "full_name: At most 200 characters"),
        (["--email", "x@y.test", "--role", "admin", "--full-name", "F\x00"], "full_name: NUL characters"),
        (["--email", "x\x00@y.test", "--role", "admin"], "not a valid email"),
        (["--email", "x" * 250 + "@y.test", "--role", "admin"], "email: At most 254 characters"),
        (["--email", "x@y.test", "--role", "client_admin", "--client", "ac\x00me"], "No client with slug"),
    ],
)
def test_create_user_refuses_bad_arguments_and_writes_nothing(args, message):
    make_client(slug="acme")
    before = counts()
    with pytest.raises(CommandError, match=message):
        run("create_user", *args, "--no-input")
    assert counts() == before


def test_create_user_refuses_an_email_that_exists_in_any_case():
    make_user(role=Role.ADMIN, email="taken@staff.test")
    before = counts()
    with pytest.raises(CommandError, match="already exists"):
        run("create_user", "--email", "TAKEN@staff.test", "--role", "admin", "--no-input")
    assert counts() == before


def test_set_role_moves_a_user_between_roles_and_audits_it(super_admin):
    client = make_client(slug="acme")
    user = make_user(role=Role.ADMIN, email="ops@staff.test")
    run("set_role", "--email", "ops@staff.test", "--role", "client_admin", "--client", "acme")
    user = get_user("ops@staff.test")
    assert (user.role, user.client) == (Role.CLIENT_ADMIN, client)
    with dangerously_bypass_rls():
        assert AuditEvent.objects.filter(action="user.role_changed", client=client).exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--email", "ghost@staff.test", "--role", "admin"], "No user with email"),
        (["--email", "ops@staff.test", "--role", "wizard"], "Unknown role"),
        (["--email", "ops@staff.test", "--role", "client_admin"], "belongs to a client"),
        (["--email", "ops@staff.test", "--role", "client_admin", "--client", "nope"], "No client with slug"),
        (["--email", "ops\x00@staff.test", "--role", "admin"], "No user with email"),
    ],
)
def test_set_role_refuses_bad_arguments_and_changes_nothing(args, message):
    make_user(role=Role.ADMIN, email="ops@staff.test")
    before = counts()
    with pytest.raises(CommandError, match=message):
        run("set_role", *args)
    assert counts() == before
    assert get_user("ops@staff.test").role == Role.ADMIN


def test_set_role_will_not_demote_the_last_super_admin(super_admin):
    with pytest.raises(CommandError, match="last active super_admin"):
        run("set_role", "--email", super_admin.email, "--role", "admin")
    assert get_user(super_admin.email).role == Role.SUPER_ADMIN


def test_deactivate_user_stops_the_user_logging_in():
    client = make_client(slug="acme")
    make_user(client=client, email="leaver@acme.test")
    run("deactivate_user", "--email", "leaver@acme.test")
    assert get_user("leaver@acme.test").is_active is False
    from django.contrib.auth import authenticate

    assert authenticate(email="leaver@acme.test", password=PASSWORD) is None


@pytest.mark.parametrize("email", ["ghost@x.test", "gh\x00st@x.test"])
def test_deactivate_user_refuses_an_unknown_email(email):
    before = counts()
    with pytest.raises(CommandError, match="No user with email"):
        run("deactivate_user", "--email", email)
    assert counts() == before


def test_seed_demo_seeds_once_and_prints_the_logins(tmp_path, settings):
    settings.BASE_DIR = tmp_path
    first = run("seed_demo")
    second = run("seed_demo")
    assert first == second
    assert "super@demo.sagerock.test" in first and "admin@harbor-coffee.demo.sagerock.test" in first
    with dangerously_bypass_rls():
        assert Client.objects.count() == 2
        assert User.objects.count() == 4
    password = first.split("super@demo.sagerock.test")[1].split()[0]
    from django.contrib.auth import authenticate

    assert authenticate(email="super@demo.sagerock.test", password=password) is not None


def test_create_oauth_app_registers_a_public_pkce_client_shared_by_every_client():
    from tenants.models import OAuthApplication

    out = run(
        "create_oauth_app", "--name", "Web", "--redirect-uri", "https://app.example.com/callback",
        "--allowed-origin", "https://app.example.com",
    )
    client_id = out.split("client_id: ")[1].strip()
    with dangerously_bypass_rls():
        application = OAuthApplication.objects.get(client_id=client_id)
    assert application.client_type == OAuthApplication.CLIENT_PUBLIC
    assert application.authorization_grant_type == OAuthApplication.GRANT_AUTHORIZATION_CODE
    assert application.tenant_id is None and application.allowed_origins == "https://app.example.com"


@pytest.mark.parametrize(
    "args",
    [
        ["--name", "Web", "--redirect-uri", "ftp://app.example.com/callback"],
        ["--name", "Web", "--redirect-uri", "https://app.example.com/cb", "--allowed-origin", "not a url"],
    ],
)
def test_create_oauth_app_refuses_bad_uris_and_writes_nothing(args):
    from tenants.models import OAuthApplication

    with pytest.raises(CommandError):
        run("create_oauth_app", *args)
    with dangerously_bypass_rls():
        assert not OAuthApplication.objects.exists()
        assert not AuditEvent.objects.exists()


def tenant_context_keys() -> list[tuple]:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT fingerprint, expires_at FROM app.tenant_context_key ORDER BY fingerprint")
        return cursor.fetchall()


@pytest.mark.parametrize("minutes", ["-1", "10081", "99999999999999999999", "ten"])
def test_rotate_tenant_context_secret_refuses_an_overlap_out_of_range_and_changes_no_key(minutes, settings):
    settings.TENANT_CONTEXT_SECRET = secrets.token_urlsafe(48)  # a new key it would otherwise install
    before = tenant_context_keys()
    with pytest.raises(CommandError, match="--overlap-minutes: give a whole number of minutes from 0 to 10080"):
        run("rotate_tenant_context_secret", "--overlap-minutes", minutes)
    assert tenant_context_keys() == before


def test_create_client_refuses_a_slug_taken_in_another_case_and_stores_slugs_lower_case():
    call_command("create_client", "--name", "Acme", "--slug", "Acme", stdout=io.StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_client", "--name", "Acme 2", "--slug", "ACME", stdout=io.StringIO())
    with dangerously_bypass_rls():
        assert list(Client.objects.values_list("slug", flat=True)) == ["acme"]
