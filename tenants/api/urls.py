from django.urls import path
from rest_framework.routers import SimpleRouter

from tenants.api import views

router = SimpleRouter(trailing_slash=True)
router.register("clients", views.ClientsViewSet, basename="clients")
router.register("audit-events", views.AuditEventViewSet, basename="audit-events")
router.register("api-applications", views.ApiApplicationViewSet, basename="api-applications")

urlpatterns = [
    path("me/", views.MeView.as_view(), name="me"),
    path("client/", views.OwnClientView.as_view(), name="own-client"),
    *router.urls,
]
