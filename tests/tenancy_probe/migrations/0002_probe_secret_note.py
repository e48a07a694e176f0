import django.db.models.deletion
import uuid
import vault.fields
from django.db import migrations, models

from tenants.operations import EnableTenantRLS


class Migration(migrations.Migration):

    dependencies = [
        ('tenancy_probe', '0001_initial'),
        ('tenants', '0004_tenant_context_proof'),
    ]

    operations = [
        migrations.CreateModel(
            name='ProbeSecretNote',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.UUIDField(default=uuid.uuid4, editable=False)),
                ('secret', vault.fields.EncryptedTextField(null=True)),
                ('client', models.ForeignKey(editable=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.client')),
            ],
            options={
                'abstract': False,
                'constraints': [models.UniqueConstraint(fields=('client', 'public_id'), name='tenancy_probe_probesecretnote_public_id_uniq')],
            },
        ),
        EnableTenantRLS(model_name="probesecretnote"),
    ]
