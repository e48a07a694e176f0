import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.hashers import check_password
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac

from tenants.context import current_client_id


class Product(models.TextChoices):
    MARKETING = "marketing", "Marketing"
    SCHOOLS = "schools", "Schools"
    CONCIERGE = "concierge", "Concierge"


class Client(models.Model):
    """A client organization. Its row is client data too: RLS keys it on `id`."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    public_id = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    name = models.CharField(max_length=200)
    # unique=True in the model (forms check it, as staff); in the database the
    # slug is unique through `app.global_key` (migration 0014), not an index.
    # The model state still lists the dropped `tenants_client_slug_key`: a
    # generated migration that alters this field would try to drop or
    # re-create it, so change the field with hand-written SQL instead.
    slug = models.SlugField(max_length=63, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    products = ArrayField(
        models.CharField(max_length=16, choices=Product.choices),
        default=list,
        blank=True,
        help_text="Products enabled for this client.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["active", "suspended"]),
                name="tenants_client_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(products__contained_by=[p.value for p in Product]),
                name="tenants_client_products_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class TenantModel(models.Model):
    """Base of every tenant table: a NOT NULL `client_id` and a non-sequential
    public id unique within the client.

    The migration that creates a subclass must also run
    `tenants.operations.EnableTenantRLS` for it; `check_rls` fails otherwise.
    Subclasses that declare their own `Meta` inherit `TenantModel.Meta` so the
    public-id constraint stays. Every index starts with `client`: a foreign key
    to another tenant row takes `db_index=False` and a `Meta.indexes` entry
    `["client", "<field>"]` (check_rls explains why).
    """

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+", editable=False)
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(fields=["client", "public_id"], name="%(app_label)s_%(class)s_public_id_uniq"),
        ]

    def save(self, *args, **kwargs):
        if self.client_id is None:
            self.client_id = current_client_id()
        super().save(*args, **kwargs)


class Role(models.TextChoices):
    SUPER_ADMIN = "super_admin", "Super admin"
    ADMIN = "admin", "Admin"
    CLIENT_ADMIN = "client_admin", "Client admin"


STAFF_ROLES = frozenset({Role.SUPER_ADMIN, Role.ADMIN})


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)


class User(AbstractBaseUser):
    """A person who logs in. Staff (super_admin, admin) belong to no client;
    a client_admin belongs to exactly one (enforced by a check constraint).

    The table holds client data, so RLS applies: the app role sees only the
    current client's users, never staff. `tenants.auth` is the one path that
    reads a user before a client context exists.
    """

    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    email = models.EmailField(max_length=254)
    full_name = models.CharField(max_length=200, blank=True)
    role = models.CharField(max_length=16, choices=Role.choices)
    client = models.ForeignKey(Client, on_delete=models.PROTECT, null=True, blank=True, related_name="users")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now, editable=False)
    # Part of the session hash: signing out bumps it, which ends every session
    # of the account, copies of the (signed-cookie) session included.
    session_epoch = models.PositiveIntegerField(default=0, editable=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role__in=[r.value for r in Role]),
                name="tenants_user_role_valid",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(role=Role.CLIENT_ADMIN, client__isnull=False)
                    | (~models.Q(role=Role.CLIENT_ADMIN) & models.Q(client__isnull=True))
                ),
                name="tenants_user_client_iff_client_admin",
            ),
            # Login identity is global (one email, one account). Only staff and
            # operators create users, so the conflict reveals nothing to a client.
            # Emails are unique across clients through `app.global_key`
            # (migration 0014), not an index here: an index on the email
            # would let SQL on the app role read other clients' emails out of
            # EXPLAIN ANALYZE (rows removed by RLS after an index range scan).
            models.UniqueConstraint(fields=["client", "public_id"], name="tenants_user_public_id_uniq"),
        ]

    def __str__(self) -> str:
        return self.email

    def check_password(self, raw_password) -> bool:
        # Django's own version re-saves an outdated hash through whatever
        # alias is current; this one writes inside the account's context.
        def upgrade_hash(raw):
            from tenants.auth import context_for_user

            self.set_password(raw)
            self._password = None
            with context_for_user(self):
                type(self).objects.filter(pk=self.pk).update(password=self.password)

        return check_password(raw_password, self.password, upgrade_hash)

    def _get_session_auth_hash(self, secret=None) -> str:
        # Django's hash covers the password hash only; sessions live in signed
        # cookies (settings), so the epoch is what makes signing out final.
        return salted_hmac(
            "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash",
            f"{self.password}:{self.session_epoch}", secret=secret, algorithm="sha256",
        ).hexdigest()

    def clean(self) -> None:
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email).lower()

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_superuser(self) -> bool:
        return self.role == Role.SUPER_ADMIN

    @property
    def is_super_admin(self) -> bool:
        return self.role == Role.SUPER_ADMIN

    # Staff roles are the permission model: Django's per-model permissions and
    # groups are not used.
    def has_perm(self, perm, obj=None) -> bool:
        return self.is_active and self.is_staff

    def has_perms(self, perm_list, obj=None) -> bool:
        return all(self.has_perm(perm, obj) for perm in perm_list)

    def has_module_perms(self, app_label) -> bool:
        return self.is_active and self.is_staff


class AuditEvent(models.Model):
    """What happened, who did it, to what. Tenant-scoped: a client_admin reads
    their own client's log; platform events (staff accounts) have no client and
    only staff see them.

    The actor is a snapshot (id and label), not a foreign key: the history
    must outlive the account, and a reference into another client's users would
    be an existence oracle.
    """

    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["client", "public_id"], name="tenants_auditevent_public_id_uniq"),
        ]
        indexes = [
            models.Index(fields=["client", "-created_at"], name="tenants_audit_client_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target}".strip()


# OAuth tables are tenant tables too; their models live beside this module.
from tenants.oauth_models import (  # noqa: E402, F401
    OAuthAccessToken,
    OAuthApplication,
    OAuthDeviceGrant,
    OAuthGrant,
    OAuthIDToken,
    OAuthRefreshToken,
)
