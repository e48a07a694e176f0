"""Clients, users and the audit log, with the database machinery every tenant
table relies on: schema `app`, `app.current_client_id()`, the runtime roles'
grants, and Row Level Security on these three tables."""

import django.contrib.postgres.fields
import django.db.models.deletion
import django.db.models.functions.text
import django.utils.timezone
import tenants.models
import uuid
from django.db import migrations, models

from tenants.operations import EnableTenantRLS, RunSQLTemplate

BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS app;
REVOKE ALL ON SCHEMA app FROM PUBLIC;
GRANT USAGE ON SCHEMA app TO {app}, {staff}, {service};

-- The one function every tenant policy calls. It reads the transaction-local
-- setting and fails closed: unset or empty means no client.
CREATE FUNCTION app.current_client_id() RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $fn$ SELECT nullif(current_setting('app.client_id', true), '')::bigint $fn$;
REVOKE ALL ON FUNCTION app.current_client_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.current_client_id() TO {app}, {staff}, {service};
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- Runtime roles read and write rows; nothing else (no TRUNCATE, no DDL).
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app}, {staff}, {service};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app}, {staff}, {service};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}, {staff}, {service};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {app}, {staff}, {service};
REVOKE ALL ON TABLE django_migrations FROM {app}, {staff}, {service};
"""

BOOTSTRAP_REVERSE = """
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM {app}, {staff}, {service};
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {app}, {staff}, {service};
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {app}, {staff}, {service};
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {app}, {staff}, {service};
ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO PUBLIC;
DROP FUNCTION IF EXISTS app.current_client_id();
DROP SCHEMA IF EXISTS app;
"""


class Migration(migrations.Migration):

    initial = True

    dependencies = [
    ]

    operations = [
        RunSQLTemplate(BOOTSTRAP, BOOTSTRAP_REVERSE),
        migrations.CreateModel(
            name='Client',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ('name', models.CharField(max_length=200)),
                ('slug', models.SlugField(max_length=63, unique=True)),
                ('status', models.CharField(choices=[('active', 'Active'), ('suspended', 'Suspended')], default='active', max_length=16)),
                ('products', django.contrib.postgres.fields.ArrayField(base_field=models.CharField(choices=[('marketing', 'Marketing'), ('schools', 'Schools'), ('concierge', 'Concierge')], max_length=16), blank=True, default=list, help_text='Products enabled for this client.', size=None)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
            ],
            options={
                'ordering': ['name'],
                'constraints': [models.CheckConstraint(condition=models.Q(('status__in', ['active', 'suspended'])), name='tenants_client_status_valid'), models.CheckConstraint(condition=models.Q(('products__contained_by', ['marketing', 'schools', 'concierge'])), name='tenants_client_products_valid')],
            },
        ),
        migrations.CreateModel(
            name='AuditEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.UUIDField(default=uuid.uuid4, editable=False)),
                ('actor_id', models.BigIntegerField(blank=True, null=True)),
                ('actor_label', models.CharField(blank=True, max_length=254)),
                ('action', models.CharField(max_length=64)),
                ('target', models.CharField(blank=True, max_length=200)),
                ('metadata', models.JSONField(blank=True, default=dict)),
                ('ip', models.GenericIPAddressField(blank=True, null=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('client', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.client')),
            ],
            options={
                'ordering': ['-created_at', '-id'],
                'indexes': [models.Index(fields=['client', '-created_at'], name='tenants_audit_client_time_idx')],
                'constraints': [models.UniqueConstraint(fields=('client', 'public_id'), name='tenants_auditevent_public_id_uniq')],
            },
        ),
        migrations.CreateModel(
            name='User',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('password', models.CharField(max_length=128, verbose_name='password')),
                ('last_login', models.DateTimeField(blank=True, null=True, verbose_name='last login')),
                ('public_id', models.UUIDField(default=uuid.uuid4, editable=False)),
                ('email', models.EmailField(max_length=254)),
                ('full_name', models.CharField(blank=True, max_length=200)),
                ('role', models.CharField(choices=[('super_admin', 'Super admin'), ('admin', 'Admin'), ('client_admin', 'Client admin')], max_length=16)),
                ('is_active', models.BooleanField(default=True)),
                ('date_joined', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('client', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='users', to='tenants.client')),
            ],
            options={
                'ordering': ['email'],
                'constraints': [models.CheckConstraint(condition=models.Q(('role__in', ['super_admin', 'admin', 'client_admin'])), name='tenants_user_role_valid'), models.CheckConstraint(condition=models.Q(models.Q(('client__isnull', False), ('role', 'client_admin')), models.Q(models.Q(('role', 'client_admin'), _negated=True), ('client__isnull', True)), _connector='OR'), name='tenants_user_client_iff_client_admin'), models.UniqueConstraint(django.db.models.functions.text.Lower('email'), name='tenants_user_email_ci_uniq'), models.UniqueConstraint(fields=('client', 'public_id'), name='tenants_user_public_id_uniq')],
            },
            managers=[
                ('objects', tenants.models.UserManager()),
            ],
        ),
        EnableTenantRLS(model_name="client", key_column="id"),
        EnableTenantRLS(model_name="user"),
        EnableTenantRLS(model_name="auditevent"),
    ]
