"""Integration credentials: a tenant table whose secret column is encrypted."""

import django.db.models.deletion
import django.utils.timezone
import uuid
import vault.fields
from django.db import migrations, models

from tenants.operations import EnableTenantRLS


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('tenants', '0004_tenant_context_proof'),
    ]

    operations = [
        migrations.CreateModel(
            name='IntegrationCredential',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.UUIDField(default=uuid.uuid4, editable=False)),
                ('provider', models.CharField(choices=[('sendgrid', 'SendGrid'), ('salesforce', 'Salesforce'), ('anthropic', 'Anthropic')], max_length=16)),
                ('label', models.CharField(default='default', max_length=100)),
                ('secret', vault.fields.EncryptedJSONField()),
                ('settings', models.JSONField(blank=True, default=dict)),
                ('fingerprint', models.CharField(editable=False, max_length=4)),
                ('created_by_id', models.BigIntegerField(blank=True, editable=False, null=True)),
                ('created_by_label', models.CharField(blank=True, editable=False, max_length=254)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('rotated_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('client', models.ForeignKey(editable=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.client')),
            ],
            options={
                'ordering': ['provider', 'label'],
                'abstract': False,
                'constraints': [models.UniqueConstraint(fields=('client', 'public_id'), name='vault_integrationcredential_public_id_uniq'), models.UniqueConstraint(fields=('client', 'provider', 'label'), name='vault_credential_client_provider_label_uniq'), models.CheckConstraint(condition=models.Q(('provider__in', ['sendgrid', 'salesforce', 'anthropic'])), name='vault_credential_provider_valid')],
            },
        ),
        EnableTenantRLS(model_name="integrationcredential"),
    ]
