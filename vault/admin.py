"""Staff view of integration credentials: provider, label, settings and the
fingerprint. The secret is never shown, not even as ciphertext; staff replace
it through a password input that is never filled back in. Every change goes
through vault.services, which writes the audit event."""

import json

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from sagerock.ratelimits import client_ip
from tenants.models import Client
from vault.models import IntegrationCredential, Provider
from vault.services import SECRET_FIELDS, credential_delete, credential_set, normalize_secret, normalize_settings


class CredentialForm(forms.ModelForm):
    """Staff see the fingerprint, never the secret. A new secret goes in a
    password input that is never filled back in."""

    # Not named `client`: the model's client field is not editable, and a
    # credential never moves between clients.
    for_client = forms.ModelChoiceField(queryset=Client.objects.all(), label="Client")
    new_secret = forms.CharField(
        label="New secret",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=(
            "Leave empty to keep the current secret. SendGrid and Anthropic: the API key. "
            'Salesforce: {"client_id": ..., "client_secret": ..., "refresh_token": ...}.'
        ),
    )
    reason = forms.CharField(max_length=200, help_text="Recorded in the audit log.")

    class Meta:
        model = IntegrationCredential
        fields = ["provider", "label", "settings"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            for name in ("for_client", "provider", "label"):
                self.fields[name].disabled = True
            self.fields["for_client"].initial = self.instance.client_id
        else:
            self.fields["new_secret"].required = True

    def clean_new_secret(self):
        value = self.cleaned_data["new_secret"]
        provider = self.cleaned_data.get("provider") or self.instance.provider
        if value and SECRET_FIELDS.get(provider) != ("api_key",):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValidationError("Give the Salesforce secret as a JSON object.") from None
        return value

    def clean(self):
        # The services' own validation, run here so that a mistake is shown on
        # the form instead of failing in save_model (a 500).
        cleaned = super().clean()
        provider = cleaned.get("provider")
        if provider not in Provider.values:
            return cleaned
        provider = Provider(provider)
        try:
            if cleaned.get("new_secret"):
                cleaned["new_secret"] = normalize_secret(provider, cleaned["new_secret"])
            cleaned["settings"] = normalize_settings(provider, cleaned.get("settings"))
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                self.add_error("new_secret" if field == "secret" else field, messages)
        client = cleaned.get("for_client")
        if not self.instance.pk and client is not None and cleaned.get("label"):
            # Adding must not silently replace an existing credential's secret.
            exists = IntegrationCredential.objects.filter(client=client, provider=provider, label=cleaned["label"])
            if exists.exists():
                self.add_error("label", "This client already has a credential with this provider and label; change it instead.")
        return cleaned


@admin.register(IntegrationCredential)
class IntegrationCredentialAdmin(admin.ModelAdmin):
    form = CredentialForm
    list_display = ["client", "provider", "label", "masked", "created_by_label", "created_at", "rotated_at"]
    list_filter = ["provider", "client"]
    search_fields = ["label", "client__name", "client__slug"]
    readonly_fields = ["masked", "created_by_label", "created_at", "rotated_at"]
    list_select_related = ["client"]

    @admin.display(description="Secret")
    def masked(self, obj):
        return f"•••• {obj.fingerprint}" if obj and obj.fingerprint else "—"

    def get_queryset(self, request):
        return super().get_queryset(request).defer("secret")

    # Error reports (500 e-mails, DEBUG=False) then show the submitted secret
    # as stars.
    @method_decorator(sensitive_post_parameters("new_secret"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        # No new secret: the sealed one stays as it is (never decrypted here).
        secret = data.get("new_secret") or None
        saved = credential_set(
            client_id=data["for_client"].pk if not change else obj.client_id,
            provider=obj.provider, label=obj.label, secret=secret, settings=data.get("settings") or {},
            actor=request.user, reason=data["reason"], ip=client_ip(request),
        )
        obj.pk = saved.pk

    # credential_set and credential_delete write the audit events, with the
    # reason; Django's admin log would duplicate them without it.
    def log_addition(self, request, obj, message):
        pass

    def log_change(self, request, obj, message):
        pass

    def log_deletions(self, request, queryset):
        pass

    def delete_model(self, request, obj):
        credential_delete(credential=obj, actor=request.user, reason="deleted in admin", ip=client_ip(request))

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)
