"""OAuth tables (django-oauth-toolkit's swappable models) as tenant tables,
with the narrow owner lookups the token endpoint and the API authentication
use before a client context exists (see tenants/auth.py)."""

import django.db.models.deletion
import oauth2_provider.generators
import oauth2_provider.models
import uuid
from django.conf import settings
from django.db import migrations, models

from tenants.operations import AllowAuthLookup, EnableTenantRLS, RunSQLTemplate, SameClientForeignKey

STAFF_ROLE = "coalesce(u.role IN ('super_admin', 'admin'), false)"

OWNER_FUNCTIONS = f"""
CREATE FUNCTION app.oauth_access_token_owner(p_checksum text)
    RETURNS TABLE (client_id bigint, is_staff boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $fn$
        SELECT t.client_id, {STAFF_ROLE}
        FROM public.tenants_oauthaccesstoken t LEFT JOIN public.tenants_user u ON u.id = t.user_id
        WHERE t.token_checksum = p_checksum AND (t.user_id IS NULL OR u.is_active)
    $fn$;

CREATE FUNCTION app.oauth_refresh_token_owner(p_checksum text)
    RETURNS TABLE (client_id bigint, is_staff boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $fn$
        SELECT t.client_id, {STAFF_ROLE}
        FROM public.tenants_oauthrefreshtoken t LEFT JOIN public.tenants_user u ON u.id = t.user_id
        WHERE t.token_checksum = p_checksum AND (t.user_id IS NULL OR u.is_active)
        LIMIT 1
    $fn$;

CREATE FUNCTION app.oauth_grant_owner(p_code text)
    RETURNS TABLE (client_id bigint, is_staff boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $fn$
        SELECT t.client_id, {STAFF_ROLE}
        FROM public.tenants_oauthgrant t JOIN public.tenants_user u ON u.id = t.user_id
        WHERE t.code = p_code AND u.is_active
    $fn$;

CREATE FUNCTION app.oauth_application_owner(p_client_id text)
    RETURNS TABLE (client_id bigint, is_staff boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $fn$
        SELECT a.tenant_id, false
        FROM public.tenants_oauthapplication a
        WHERE a.client_id = p_client_id AND a.tenant_id IS NOT NULL
    $fn$;

REVOKE ALL ON FUNCTION app.oauth_access_token_owner(text), app.oauth_refresh_token_owner(text),
    app.oauth_grant_owner(text), app.oauth_application_owner(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.oauth_access_token_owner(text), app.oauth_refresh_token_owner(text),
    app.oauth_grant_owner(text), app.oauth_application_owner(text) TO {{app}}, {{staff}};
"""

OWNER_FUNCTIONS_REVERSE = """
DROP FUNCTION IF EXISTS app.oauth_access_token_owner(text);
DROP FUNCTION IF EXISTS app.oauth_refresh_token_owner(text);
DROP FUNCTION IF EXISTS app.oauth_grant_owner(text);
DROP FUNCTION IF EXISTS app.oauth_application_owner(text);
"""


class Migration(migrations.Migration):

    dependencies = [
        ('tenants', '0002_auth_identity_lookup'),
    ]
    # The toolkit's own migrations describe its swapped models with references
    # to ours, so ours must exist first.
    run_before = [('oauth2_provider', '0001_initial')]

    operations = [
        migrations.CreateModel(
            name='OAuthApplication',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('client_id', models.CharField(db_index=True, default=oauth2_provider.generators.generate_client_id, max_length=255, unique=True, verbose_name='client ID')),
                ('redirect_uris', models.TextField(blank=True, help_text='Allowed URIs list, space separated', verbose_name='redirect URIs')),
                ('post_logout_redirect_uris', models.TextField(blank=True, default='', help_text='Allowed Post Logout URIs list, space separated', verbose_name='post logout redirect URIs')),
                ('client_type', models.CharField(choices=[('confidential', 'Confidential'), ('public', 'Public')], max_length=32, verbose_name='client type')),
                ('authorization_grant_type', models.CharField(choices=[('authorization-code', 'Authorization code'), ('urn:ietf:params:oauth:grant-type:device_code', 'Device Code'), ('implicit', 'Implicit'), ('password', 'Resource owner password-based'), ('client-credentials', 'Client credentials'), ('openid-hybrid', 'OpenID connect hybrid')], max_length=44, verbose_name='authorization grant type')),
                ('client_secret', oauth2_provider.models.ClientSecretField(blank=True, db_index=True, default=oauth2_provider.generators.generate_client_secret, help_text='Client secret for authentication', max_length=255, verbose_name='client secret')),
                ('hash_client_secret', models.BooleanField(default=True, verbose_name='hash client secret')),
                ('name', models.CharField(blank=True, max_length=255, verbose_name='name')),
                ('skip_authorization', models.BooleanField(default=False, verbose_name='skip authorization')),
                ('created', models.DateTimeField(auto_now_add=True, verbose_name='created')),
                ('updated', models.DateTimeField(auto_now=True, verbose_name='updated')),
                ('algorithm', models.CharField(blank=True, choices=[('', 'No OIDC support'), ('RS256', 'RSA with SHA-2 256'), ('HS256', 'HMAC with SHA-2 256')], default='', max_length=5, verbose_name='algorithm')),
                ('allowed_origins', models.TextField(blank=True, default='', help_text='Allowed origins list to enable CORS, space separated', verbose_name='allowed origins')),
                ('registration_source', models.CharField(choices=[('manual', 'Manual'), ('dcr', 'Dynamic Client Registration'), ('cimd', 'Client ID Metadata Document')], default='manual', help_text='How this application was registered (manual, DCR per RFC 7591, or CIMD)', max_length=32, verbose_name='registration source')),
                ('cimd_expires_at', models.DateTimeField(blank=True, default=None, help_text='When the cached Client ID Metadata Document should be re-fetched', null=True, verbose_name='CIMD expires at')),
                ('tenant', models.ForeignKey(blank=True, help_text='The client this server-to-server application acts for; empty for a first-party app.', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='api_applications', to='tenants.client')),
                ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='%(app_label)s_%(class)s', to=settings.AUTH_USER_MODEL, verbose_name='user')),
            ],
            options={
                'verbose_name': 'OAuth application',
                'abstract': False,
                'swappable': 'OAUTH2_PROVIDER_APPLICATION_MODEL',
            },
        ),
        migrations.CreateModel(
            name='OAuthGrant',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('code', models.CharField(max_length=255, unique=True, verbose_name='code')),
                ('expires', models.DateTimeField(verbose_name='expires')),
                ('redirect_uri', models.TextField(verbose_name='redirect URI')),
                ('scope', models.TextField(blank=True, verbose_name='scope')),
                ('created', models.DateTimeField(auto_now_add=True, verbose_name='created')),
                ('updated', models.DateTimeField(auto_now=True, verbose_name='updated')),
                ('code_challenge', models.CharField(blank=True, default='', max_length=128, verbose_name='code challenge')),
                ('code_challenge_method', models.CharField(blank=True, choices=[('plain', 'plain'), ('S256', 'S256')], default='', max_length=10, verbose_name='code challenge method')),
                ('nonce', models.CharField(blank=True, default='', max_length=255, verbose_name='nonce')),
                ('claims', models.TextField(blank=True, verbose_name='claims')),
                ('resource', oauth2_provider.models.ResourceJSONField(blank=True, default=list, verbose_name='resource')),
                ('application', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to=settings.OAUTH2_PROVIDER_APPLICATION_MODEL, verbose_name='application')),
                ('client', models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.client')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='%(app_label)s_%(class)s', to=settings.AUTH_USER_MODEL, verbose_name='user')),
            ],
            options={
                'abstract': False,
                'swappable': 'OAUTH2_PROVIDER_GRANT_MODEL',
            },
        ),
        migrations.CreateModel(
            name='OAuthIDToken',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('jti', models.UUIDField(default=uuid.uuid4, editable=False, unique=True, verbose_name='JWT Token ID')),
                ('expires', models.DateTimeField(verbose_name='expires')),
                ('scope', models.TextField(blank=True, verbose_name='scope')),
                ('created', models.DateTimeField(auto_now_add=True, verbose_name='created')),
                ('updated', models.DateTimeField(auto_now=True, verbose_name='updated')),
                ('application', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, to=settings.OAUTH2_PROVIDER_APPLICATION_MODEL, verbose_name='application')),
                ('client', models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.client')),
                ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='%(app_label)s_%(class)s', to=settings.AUTH_USER_MODEL, verbose_name='user')),
            ],
            options={
                'abstract': False,
                'swappable': 'OAUTH2_PROVIDER_ID_TOKEN_MODEL',
            },
        ),
        migrations.CreateModel(
            name='OAuthAccessToken',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('token', models.TextField(verbose_name='token')),
                ('token_checksum', oauth2_provider.models.TokenChecksumField(db_index=True, max_length=64, unique=True, verbose_name='token checksum')),
                ('expires', models.DateTimeField(verbose_name='expires')),
                ('scope', models.TextField(blank=True, verbose_name='scope')),
                ('resource', oauth2_provider.models.ResourceJSONField(blank=True, default=list, verbose_name='resource')),
                ('created', models.DateTimeField(auto_now_add=True, verbose_name='created')),
                ('updated', models.DateTimeField(auto_now=True, verbose_name='updated')),
                ('client', models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.client')),
                ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='%(app_label)s_%(class)s', to=settings.AUTH_USER_MODEL, verbose_name='user')),
                ('application', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, to=settings.OAUTH2_PROVIDER_APPLICATION_MODEL, verbose_name='application')),
                ('id_token', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='access_token', to=settings.OAUTH2_PROVIDER_ID_TOKEN_MODEL, verbose_name='ID token')),
            ],
            options={
                'abstract': False,
                'swappable': 'OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL',
            },
        ),
        migrations.CreateModel(
            name='OAuthRefreshToken',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('token', models.TextField(verbose_name='token')),
                ('token_checksum', oauth2_provider.models.TokenChecksumField(max_length=64, verbose_name='token checksum')),
                ('token_family', models.UUIDField(blank=True, editable=False, null=True, verbose_name='token family')),
                ('resource', oauth2_provider.models.ResourceJSONField(blank=True, default=list, verbose_name='resource')),
                ('created', models.DateTimeField(auto_now_add=True, verbose_name='created')),
                ('updated', models.DateTimeField(auto_now=True, verbose_name='updated')),
                ('revoked', models.DateTimeField(null=True, verbose_name='revoked')),
                ('access_token', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='refresh_token', to=settings.OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL, verbose_name='access token')),
                ('application', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to=settings.OAUTH2_PROVIDER_APPLICATION_MODEL, verbose_name='application')),
                ('client', models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.client')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='%(app_label)s_%(class)s', to=settings.AUTH_USER_MODEL, verbose_name='user')),
            ],
            options={
                'abstract': False,
                'swappable': 'OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL',
            },
        ),
        migrations.AddField(
            model_name='oauthaccesstoken',
            name='source_refresh_token',
            field=models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='refreshed_access_token', to=settings.OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL, verbose_name='source refresh token'),
        ),
        migrations.CreateModel(
            name='OAuthDeviceGrant',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('device_code', models.CharField(max_length=100, verbose_name='device code')),
                ('user_code', models.CharField(max_length=100, verbose_name='user code')),
                ('scope', models.TextField(blank=True, verbose_name='scope')),
                ('interval', models.IntegerField(default=5, verbose_name='interval')),
                ('expires', models.DateTimeField(verbose_name='expires')),
                ('status', models.CharField(blank=True, choices=[('authorized', 'Authorized'), ('authorization-pending', 'Authorization pending'), ('expired', 'Expired'), ('denied', 'Denied')], default='authorization-pending', max_length=64, verbose_name='status')),
                ('last_checked', models.DateTimeField(auto_now=True, verbose_name='last checked')),
                ('client', models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.client')),
                ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='%(app_label)s_%(class)s', to=settings.AUTH_USER_MODEL, verbose_name='user')),
            ],
            options={
                'abstract': False,
                'swappable': 'OAUTH2_PROVIDER_DEVICE_GRANT_MODEL',
                'constraints': [models.UniqueConstraint(fields=('device_code',), name='tenants_oauthdevicegrant_unique_device_code')],
            },
        ),
        migrations.AddIndex(
            model_name='oauthrefreshtoken',
            index=models.Index(fields=['token_family'], name='tenants_oau_token_f_29638b_idx'),
        ),
        migrations.AlterUniqueTogether(
            name='oauthrefreshtoken',
            unique_together={('token_checksum', 'revoked')},
        ),
        EnableTenantRLS(model_name="oauthapplication", key_column="tenant_id", shared_when_null=True),
        EnableTenantRLS(model_name="oauthgrant"),
        EnableTenantRLS(model_name="oauthidtoken"),
        EnableTenantRLS(model_name="oauthaccesstoken"),
        EnableTenantRLS(model_name="oauthrefreshtoken"),
        EnableTenantRLS(model_name="oauthdevicegrant"),
        SameClientForeignKey(model_name="oauthgrant", field_name="user"),
        SameClientForeignKey(model_name="oauthidtoken", field_name="user"),
        SameClientForeignKey(model_name="oauthaccesstoken", field_name="user"),
        SameClientForeignKey(model_name="oauthaccesstoken", field_name="id_token"),
        SameClientForeignKey(model_name="oauthaccesstoken", field_name="source_refresh_token"),
        SameClientForeignKey(model_name="oauthrefreshtoken", field_name="user"),
        SameClientForeignKey(model_name="oauthrefreshtoken", field_name="access_token"),
        SameClientForeignKey(model_name="oauthdevicegrant", field_name="user"),
        AllowAuthLookup(model_name="oauthaccesstoken"),
        AllowAuthLookup(model_name="oauthrefreshtoken"),
        AllowAuthLookup(model_name="oauthgrant"),
        AllowAuthLookup(model_name="oauthapplication"),
        RunSQLTemplate(OWNER_FUNCTIONS, OWNER_FUNCTIONS_REVERSE),
    ]
