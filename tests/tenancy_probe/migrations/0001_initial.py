import django.db.models.deletion
import uuid
from django.db import migrations, models

from tenants.operations import EnableTenantRLS, SameClientForeignKey


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('tenants', '0002_auth_identity_lookup'),
    ]

    operations = [
        migrations.CreateModel(
            name='ProbeNote',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.UUIDField(default=uuid.uuid4, editable=False)),
                ('title', models.CharField(max_length=100)),
                ('client', models.ForeignKey(editable=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.client')),
            ],
            options={
                'abstract': False,
            },
        ),
        migrations.CreateModel(
            name='ProbeComment',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.UUIDField(default=uuid.uuid4, editable=False)),
                ('body', models.CharField(max_length=100)),
                ('client', models.ForeignKey(editable=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.client')),
                ('note', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='comments', to='tenancy_probe.probenote')),
            ],
            options={
                'abstract': False,
            },
        ),
        migrations.AddConstraint(
            model_name='probenote',
            constraint=models.UniqueConstraint(fields=('client', 'public_id'), name='tenancy_probe_probenote_public_id_uniq'),
        ),
        migrations.AddConstraint(
            model_name='probecomment',
            constraint=models.UniqueConstraint(fields=('client', 'public_id'), name='tenancy_probe_probecomment_public_id_uniq'),
        ),
        EnableTenantRLS(model_name="probenote"),
        EnableTenantRLS(model_name="probecomment"),
        SameClientForeignKey(model_name="probecomment", field_name="note"),
    ]
