"""Views that exist only in the test configuration (SAGEROCK_TESTING), to
exercise shared machinery through real HTTP before a product endpoint uses it."""

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from sagerock.ratelimits import rate_limited
from tests.tenancy_probe.models import ProbeNote


@csrf_exempt
@rate_limited("webhook")
def webhook_limited(request):
    return JsonResponse({"ok": True})


@csrf_exempt
@rate_limited("contact_upsert")
def contact_upsert_limited(request):
    return JsonResponse({"ok": True})


def write_then_fail(request):
    """A signed-in request that writes and then fails (as a bug would), or
    answers with a given error status after writing."""
    ProbeNote.objects.create(client_id=int(request.GET["client"]), title="half-done")
    if "status" in request.GET:
        return JsonResponse({"code": "refused"}, status=int(request.GET["status"]))
    raise RuntimeError("the second half of the work failed")


urlpatterns = [
    path("write-then-fail/", write_then_fail),
    path("ratelimit/webhook/", webhook_limited),
    path("ratelimit/contact-upsert/", contact_upsert_limited),
]
