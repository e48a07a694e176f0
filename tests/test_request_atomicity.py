"""A signed-in (session) request is one transaction: when it ends in an error
response, whatever it wrote is rolled back, also when Django has already
turned the view's exception into a 500."""

import pytest
from django.test import Client as HttpClient

from tenants.context import dangerously_bypass_rls
from tenants.models import Role
from tests.factories import ALL_DATABASES, make_client, make_user
from tests.tenancy_probe.models import ProbeNote

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)


@pytest.fixture
def signed_in_staff():
    http = HttpClient(raise_request_exception=False)
    http.force_login(make_user(role=Role.ADMIN))
    return http


def notes():
    with dangerously_bypass_rls():
        return list(ProbeNote.objects.values_list("title", flat=True))


def test_a_staff_request_that_fails_after_writing_keeps_nothing(signed_in_staff):
    client = make_client()
    response = signed_in_staff.get(f"/test-only/write-then-fail/?client={client.pk}")
    assert response.status_code == 500
    assert notes() == []


@pytest.mark.parametrize("status, kept", [(200, ["half-done"]), (403, []), (409, [])])
def test_only_a_successful_answer_commits(signed_in_staff, status, kept):
    client = make_client()
    response = signed_in_staff.get(f"/test-only/write-then-fail/?client={client.pk}&status={status}")
    assert response.status_code == status
    assert notes() == kept
