"""Views that exist only in the test configuration (SAGEROCK_TESTING), to
exercise shared machinery through real HTTP before a product endpoint uses it."""

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from sagerock.ratelimits import rate_limited


@csrf_exempt
@rate_limited("webhook")
def webhook_limited(request):
    return JsonResponse({"ok": True})


@csrf_exempt
@rate_limited("contact_upsert")
def contact_upsert_limited(request):
    return JsonResponse({"ok": True})


urlpatterns = [
    path("ratelimit/webhook/", webhook_limited),
    path("ratelimit/contact-upsert/", contact_upsert_limited),
]
