import threading
import time
from http.cookies import SimpleCookie

import pytest
from django.contrib.auth import authenticate
from django.db import connections
from django.test import Client as HttpClient

from tenants.context import dangerously_bypass_rls
from tenants.models import AuditEvent, Client, Role, User
from tenants.services import user_set_role
from tests.factories import ALL_DATABASES, PASSWORD, make_client, make_user

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)


def admin_login(email: str, password: str = PASSWORD, ip: str = "198.51.100.7"):
    browser = HttpClient(REMOTE_ADDR=ip)
    response = browser.post("/admin/login/?next=/admin/", {"username": email, "password": password})
    return browser, response


def reload(user: User) -> User:
    with dangerously_bypass_rls():
        return User.objects.get(pk=user.pk)


def test_login_is_by_email_in_any_case(admin_a):
    assert authenticate(email="ADMIN@Alpha.test", password=PASSWORD) == admin_a


def test_wrong_password_and_unknown_email_do_not_authenticate(admin_a):
    assert authenticate(email=admin_a.email, password="nope") is None
    assert authenticate(email="nobody@alpha.test", password=PASSWORD) is None


def test_users_of_a_suspended_client_cannot_authenticate():
    client = make_client(slug="paused", status=Client.Status.SUSPENDED)
    user = make_user(client=client)
    assert authenticate(email=user.email, password=PASSWORD) is None


def test_an_inactive_user_cannot_authenticate():
    user = make_user(role=Role.ADMIN, is_active=False)
    assert authenticate(email=user.email, password=PASSWORD) is None


def test_staff_can_log_in_to_admin_and_last_login_is_recorded(staff_admin):
    browser, response = admin_login(staff_admin.email)
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert browser.get("/admin/").status_code == 200
    assert reload(staff_admin).last_login is not None


def test_a_client_admin_cannot_log_in_to_admin(admin_a):
    browser, response = admin_login(admin_a.email)
    assert response.status_code == 200
    assert "staff account" in response.content.decode()
    assert browser.get("/admin/").status_code == 302


def test_a_client_admin_logged_in_elsewhere_is_still_refused_by_admin(admin_a):
    browser = HttpClient()
    browser.force_login(admin_a)
    response = browser.get("/admin/tenants/user/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_admin_pages_list_every_clients_users_through_the_staff_role(staff_admin, admin_a, admin_b):
    browser = HttpClient()
    browser.force_login(staff_admin)
    page = browser.get("/admin/tenants/user/").content.decode()
    assert admin_a.email in page and admin_b.email in page


def test_an_admin_cannot_promote_anyone_to_super_admin(staff_admin, admin_a, client_a):
    browser = HttpClient()
    browser.force_login(staff_admin)
    response = browser.post(
        f"/admin/tenants/user/{admin_a.pk}/change/",
        {"email": admin_a.email, "full_name": "", "role": "super_admin", "client": "", "is_active": "on"},
    )
    assert response.status_code == 200  # the form comes back with an error
    assert "Select a valid choice. super_admin is not one of the available choices." in response.content.decode()
    assert reload(admin_a).role == Role.CLIENT_ADMIN


def test_an_admin_cannot_create_a_staff_account(staff_admin):
    browser = HttpClient()
    browser.force_login(staff_admin)
    response = browser.post(
        "/admin/tenants/user/add/",
        {"email": "new@staff.test", "role": "admin", "password1": "x" * 20 + "Q1!", "password2": "x" * 20 + "Q1!"},
    )
    assert response.status_code == 200
    assert "Select a valid choice. admin is not one of the available choices." in response.content.decode()
    with dangerously_bypass_rls():
        assert not User.objects.filter(email="new@staff.test").exists()


def test_an_admin_cannot_change_another_staff_account(staff_admin, super_admin):
    browser = HttpClient()
    browser.force_login(staff_admin)
    response = browser.post(
        f"/admin/tenants/user/{super_admin.pk}/change/",
        {"email": super_admin.email, "role": "admin", "client": "", "is_active": ""},
    )
    assert response.status_code == 403
    assert reload(super_admin).is_active and reload(super_admin).role == Role.SUPER_ADMIN


def test_an_admin_can_create_a_client_admin_and_it_is_audited(staff_admin, client_a):
    browser = HttpClient()
    browser.force_login(staff_admin)
    response = browser.post(
        "/admin/tenants/user/add/",
        {
            "email": "New@Alpha.test", "full_name": "New", "role": "client_admin", "client": client_a.pk,
            "password1": "a-long-enough-pass-1", "password2": "a-long-enough-pass-1",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    with dangerously_bypass_rls():
        user = User.objects.get(email="new@alpha.test")
        event = AuditEvent.objects.get(action="user.created")
    assert user.client == client_a
    assert (event.client_id, event.actor_id) == (client_a.pk, staff_admin.pk)


def test_a_super_admin_can_promote_an_admin(super_admin, staff_admin):
    browser = HttpClient()
    browser.force_login(super_admin)
    response = browser.post(
        f"/admin/tenants/user/{staff_admin.pk}/change/",
        {"email": staff_admin.email, "full_name": "", "role": "super_admin", "client": "", "is_active": "on"},
    )
    assert response.status_code == 302
    assert reload(staff_admin).role == Role.SUPER_ADMIN


def test_the_database_refuses_a_client_admin_without_a_client():
    from django.db import IntegrityError

    with pytest.raises(IntegrityError, match="tenants_user_client_iff_client_admin"):
        make_user(role=Role.CLIENT_ADMIN, client=None)
    with pytest.raises(IntegrityError, match="tenants_user_client_iff_client_admin"):
        make_user(role=Role.ADMIN, client=make_client())


def test_admin_login_is_rate_limited_per_ip(settings, staff_admin):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "auth": (3, 60)}
    for _ in range(3):
        _, response = admin_login(staff_admin.email, "wrong", ip="203.0.113.9")
        assert response.status_code == 200
        assert response["RateLimit-Limit"] == "3"
    _, blocked = admin_login(staff_admin.email, PASSWORD, ip="203.0.113.9")
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) >= 1
    assert blocked.json()["code"] == "rate_limited"
    _, other_ip = admin_login(staff_admin.email, PASSWORD, ip="203.0.113.10")
    assert other_ip.status_code == 302


def test_no_sign_up_page_exists():
    browser = HttpClient()
    for path in ("/signup/", "/accounts/signup/", "/register/", "/accounts/register/"):
        assert browser.get(path).status_code == 404


def test_an_admin_cannot_add_a_super_admin(staff_admin):
    browser = HttpClient()
    browser.force_login(staff_admin)
    response = browser.post(
        "/admin/tenants/user/add/",
        {"email": "boss@staff.test", "role": "super_admin", "password1": "a-long-enough-pass-1",
         "password2": "a-long-enough-pass-1"},
    )
    assert response.status_code == 200
    assert "Select a valid choice. super_admin is not one of the available choices." in response.content.decode()
    with dangerously_bypass_rls():
        assert not User.objects.filter(email="boss@staff.test").exists()


@pytest.mark.parametrize("target_role", [Role.SUPER_ADMIN, Role.ADMIN])
def test_an_admin_cannot_change_another_staff_accounts_password(staff_admin, target_role):
    target = make_user(role=target_role, email=f"other-{target_role}@staff.test")
    browser = HttpClient()
    browser.force_login(staff_admin)
    response = browser.post(
        f"/admin/tenants/user/{target.pk}/password/",
        {"password1": "a-new-long-pass-22", "password2": "a-new-long-pass-22", "usable_password": "true"},
    )
    assert response.status_code == 403
    assert reload(target).check_password(PASSWORD)


def test_an_admin_cannot_change_their_own_role(staff_admin, client_a):
    browser = HttpClient()
    browser.force_login(staff_admin)
    response = browser.post(
        f"/admin/tenants/user/{staff_admin.pk}/change/",
        {"email": staff_admin.email, "full_name": "", "role": "client_admin", "client": client_a.pk, "is_active": "on"},
    )
    assert response.status_code == 403
    assert reload(staff_admin).role == Role.ADMIN


@pytest.mark.parametrize(
    "change",
    [{"role": "admin", "is_active": "on"}, {"role": "super_admin"}],
    ids=["demote", "deactivate"],
)
def test_the_last_active_super_admin_cannot_be_demoted_or_deactivated_in_admin(super_admin, change):
    make_user(role=Role.SUPER_ADMIN, email="former@staff.test", is_active=False)
    browser = HttpClient()
    browser.force_login(super_admin)
    response = browser.post(
        f"/admin/tenants/user/{super_admin.pk}/change/",
        {"email": super_admin.email, "full_name": "", "client": "", **change},
    )
    assert response.status_code == 200  # the form comes back with the error
    assert "This is the last active super_admin; appoint another one first." in response.content.decode()
    user = reload(super_admin)
    assert (user.role, user.is_active) == (Role.SUPER_ADMIN, True)


def test_a_super_admin_deactivating_another_in_admin_goes_through_the_audited_service(super_admin):
    other = make_user(role=Role.SUPER_ADMIN, email="other@staff.test")
    browser = HttpClient(REMOTE_ADDR="198.51.100.8")
    browser.force_login(super_admin)
    response = browser.post(
        f"/admin/tenants/user/{other.pk}/change/",
        {"email": other.email, "full_name": "", "role": "super_admin", "client": ""},
    )
    assert response.status_code == 302
    assert reload(other).is_active is False
    with dangerously_bypass_rls():
        event = AuditEvent.objects.get(action="user.deactivated")
    assert (event.actor_id, event.target, event.ip) == (super_admin.pk, f"user:{other.email}", "198.51.100.8")


def test_two_super_admins_demoting_each_other_at_once_leave_one(super_admin):
    other = make_user(role=Role.SUPER_ADMIN, email="other@staff.test")
    demoted_other = threading.Event()

    def demote_other_and_commit_once_the_admin_waits():
        try:
            with dangerously_bypass_rls():
                user_set_role(user=other, role=Role.ADMIN, actor="test")
                demoted_other.set()
                with connections["service"].cursor() as cursor:
                    for _ in range(100):
                        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                        if cursor.fetchone()[0]:
                            break
                        time.sleep(0.05)
        finally:
            connections.close_all()

    thread = threading.Thread(target=demote_other_and_commit_once_the_admin_waits)
    thread.start()
    demoted_other.wait(timeout=10)
    browser = HttpClient()
    browser.force_login(super_admin)
    response = browser.post(
        f"/admin/tenants/user/{super_admin.pk}/change/",
        {"email": super_admin.email, "full_name": "", "role": "admin", "client": "", "is_active": "on"},
    )
    thread.join()
    assert response.status_code == 200
    assert "This is the last active super_admin" in response.content.decode()
    assert (reload(super_admin).role, reload(other).role) == (Role.SUPER_ADMIN, Role.ADMIN)


def test_signing_out_ends_every_copy_of_the_session(staff_admin):
    """Sessions are signed cookies: a copy taken before sign-out must not
    work after it, and neither may the account's other sessions."""
    browser = HttpClient()
    assert browser.post("/accounts/login/", {"username": staff_admin.email, "password": PASSWORD}).status_code == 302
    copy = HttpClient()
    copy.cookies = SimpleCookie({name: morsel.value for name, morsel in browser.cookies.items()})
    assert copy.get("/admin/").status_code == 200
    other_device = HttpClient()
    assert other_device.post("/accounts/login/", {"username": staff_admin.email, "password": PASSWORD}).status_code == 302

    assert browser.post("/admin/logout/").status_code == 200
    assert copy.get("/admin/").status_code == 302  # to the login page
    assert other_device.get("/admin/").status_code == 302
    assert browser.post("/accounts/login/", {"username": staff_admin.email, "password": PASSWORD}).status_code == 302
    assert browser.get("/admin/").status_code == 200


def test_staff_see_oauth_applications_read_only_and_no_token_pages(super_admin):
    from tests.factories import make_web_app

    application = make_web_app()
    browser = HttpClient()
    browser.force_login(super_admin)
    assert browser.get("/admin/tenants/oauthapplication/").status_code == 200
    assert browser.get(f"/admin/tenants/oauthapplication/{application.pk}/change/").status_code == 200
    response = browser.post(
        f"/admin/tenants/oauthapplication/{application.pk}/change/", {"redirect_uris": "https://evil.example/cb"}
    )
    assert response.status_code == 403
    for page in ("oauthaccesstoken", "oauthrefreshtoken", "oauthgrant", "oauthidtoken"):
        assert browser.get(f"/admin/tenants/{page}/").status_code == 404, page


def test_a_client_slug_taken_in_another_case_is_a_form_error_not_a_500(super_admin):
    make_client(slug="acme")
    browser = HttpClient()
    browser.force_login(super_admin)
    response = browser.post(
        "/admin/tenants/client/add/", {"name": "Acme again", "slug": "ACME", "status": "active", "products": "marketing"}
    )
    assert response.status_code == 200
    assert "A client with this slug already exists." in response.content.decode()
    with dangerously_bypass_rls():
        assert Client.objects.filter(slug__iexact="acme").count() == 1
