from rest_framework import serializers

from tenants.models import AuditEvent, Client, OAuthApplication, Product, User


class ClientSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = Client
        fields = ["id", "name", "slug", "status", "products", "created_at"]
        read_only_fields = ["slug", "status", "products", "created_at"]


class ClientProfileInputSerializer(serializers.Serializer):
    """What a client_admin may change about their own organization."""

    name = serializers.CharField(max_length=200, min_length=1, trim_whitespace=True)


class StaffClientInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, min_length=1, required=False)
    status = serializers.ChoiceField(choices=Client.Status.choices, required=False)
    products = serializers.ListField(
        child=serializers.ChoiceField(choices=Product.choices), required=False, allow_empty=True, max_length=10
    )


class UserSummarySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = User
        fields = ["id", "email", "full_name", "role"]


class ApplicationSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = OAuthApplication
        fields = ["client_id", "name"]


class MeSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["user", "application"])
    role = serializers.CharField()
    user = UserSummarySerializer(allow_null=True)
    application = ApplicationSummarySerializer(allow_null=True)
    client = ClientSerializer(allow_null=True)


class AuditEventSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    client = serializers.UUIDField(source="client.public_id", read_only=True, allow_null=True)
    actor = serializers.CharField(source="actor_label", read_only=True)

    class Meta:
        model = AuditEvent
        fields = ["id", "client", "actor", "action", "target", "metadata", "ip", "created_at"]


class ApiApplicationSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="client_id", read_only=True)

    class Meta:
        model = OAuthApplication
        fields = ["id", "name", "created"]


class ApiApplicationCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, min_length=1)


class ApiApplicationCreatedSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The OAuth client_id.")
    name = serializers.CharField()
    client_secret = serializers.CharField(help_text="Shown once; store it now. SageRock keeps only a hash.")
    token_url = serializers.CharField()
