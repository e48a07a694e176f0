"""Two tenant tables that exist only in the test database, to exercise the
RLS machinery on a parent/child pair the way every product table will use it."""

from django.db import models

from tenants.models import TenantModel
from vault.fields import EncryptedTextField


class ProbeNote(TenantModel):
    title = models.CharField(max_length=100)

    class Meta(TenantModel.Meta):
        app_label = "tenancy_probe"


class ProbeComment(TenantModel):
    # Indexed with the tenant key first (Meta.indexes), as check_rls requires.
    note = models.ForeignKey(ProbeNote, on_delete=models.CASCADE, related_name="comments", db_index=False)
    body = models.CharField(max_length=100)

    class Meta(TenantModel.Meta):
        app_label = "tenancy_probe"
        indexes = [models.Index(fields=["client", "note"], name="probecomment_client_note_idx")]


class ProbeSecretNote(TenantModel):
    """A text secret beside the vault's own table, for the field's tests."""

    secret = EncryptedTextField(null=True)

    class Meta(TenantModel.Meta):
        app_label = "tenancy_probe"
