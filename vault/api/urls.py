from rest_framework.routers import SimpleRouter

from vault.api.views import CredentialViewSet

router = SimpleRouter(trailing_slash=True)
router.register("credentials", CredentialViewSet, basename="credentials")

urlpatterns = router.urls
