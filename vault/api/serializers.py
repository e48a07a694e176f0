from rest_framework import serializers

from vault.models import IntegrationCredential, Provider


class CredentialSerializer(serializers.ModelSerializer):
    """What anyone may see of a credential: never the secret or its ciphertext."""

    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = IntegrationCredential
        fields = ["id", "provider", "label", "fingerprint", "settings", "created_at", "rotated_at"]


class CredentialInputSerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=Provider.choices)
    label = serializers.CharField(max_length=100, default="default")
    secret = serializers.JSONField(
        write_only=True,
        help_text='SendGrid/Anthropic: the API key as a string. Salesforce: {"client_id", "client_secret", "refresh_token"}.',
    )
    settings = serializers.DictField(required=False, default=dict)
    reason = serializers.CharField(max_length=200, required=False, default="set through the API")


