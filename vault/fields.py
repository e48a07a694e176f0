"""Model fields that encrypt before anything reaches the database.

The associated data must name the row's client (and the row itself), but
Django's value hooks (`get_prep_value`, `from_db_value`) never see the model
instance. So the attribute on an instance is not a string but a `Secret`,
bound to its instance by the field's descriptor:

    credential.secret = "SG.abc..."        # becomes a Secret holding plaintext
    credential.save()                      # encrypted with this row's AAD
    credential.secret                      # <Secret: encrypted>
    credential.secret.reveal()             # plaintext; vault.services only

Reading back from the database gives a sealed Secret (also for a deferred
secret read later, and after `refresh_from_db()`); it is decrypted only on
`reveal()`, so loading rows (lists, admin pages) never puts plaintext in
memory, and a reveal is always a visible, greppable call. `str()`, `repr()`,
forms, serializers and templates see a mask, never the value. Writing a plain
string through `QuerySet.update()` or filtering by value is refused, because
neither could be encrypted for its row.
"""

from __future__ import annotations

import json

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models.query_utils import DeferredAttribute

from vault import crypto

MASK = "<encrypted>"


class Sealed(str):
    """A ciphertext in the stored format, written as-is (key rotation)."""

    __slots__ = ()


class Secret:
    """An encrypted field's value: plaintext waiting to be sealed, or a
    sealed value waiting to be revealed."""

    __slots__ = ("_plaintext", "_sealed", "_instance", "_field")

    def __init__(self, *, plaintext: str | None = None, sealed: str | None = None):
        self._plaintext = plaintext
        self._sealed = sealed
        self._instance = None
        self._field = None

    def __repr__(self) -> str:
        return f"<Secret: {'encrypted' if self._sealed is not None else 'not saved yet'}>"

    def __str__(self) -> str:
        return MASK

    def __reduce__(self):
        # Never pickled (caches, task arguments) with its plaintext.
        raise TypeError("vault secrets cannot be pickled")

    def _bind(self, instance, field) -> Secret:
        self._instance = instance
        self._field = field
        return self

    def _aad(self) -> bytes:
        if self._instance is None or self._field is None:
            raise crypto.DecryptionError("this secret is not attached to a row")
        return self._field.associated_data(self._instance)

    @property
    def sealed(self) -> str | None:
        return self._sealed

    def seal(self) -> str:
        """Encrypt pending plaintext with the primary key and this row's
        associated data; drop the plaintext afterwards."""
        if self._plaintext is not None:
            self._sealed = crypto.encrypt(self._plaintext.encode("utf-8"), aad=self._aad())
            self._plaintext = None
        return self._sealed

    def reveal_text(self) -> str:
        if self._plaintext is not None:
            return self._plaintext
        if self._sealed is None:
            raise crypto.DecryptionError("empty secret")
        return crypto.decrypt(self._sealed, aad=self._aad()).decode("utf-8")

    def reveal(self):
        return self._field.from_text(self.reveal_text()) if self._field is not None else self.reveal_text()


class _SecretDescriptor(DeferredAttribute):
    def __set__(self, instance, value):
        instance.__dict__[self.field.attname] = self.field.to_secret(value, instance)


class EncryptedTextField(models.TextField):
    """A text secret, stored as `base64(iv):base64(ciphertext):base64(tag)`.

    The model needs `client_id` and `public_id` (every TenantModel has both):
    they are part of the associated data.
    """

    descriptor_class = _SecretDescriptor

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("editable", None)
        return name, path, args, kwargs

    def get_default(self):
        # Not TextField's "": an unset secret is absent, and a NOT NULL
        # column then refuses the row instead of storing an empty secret.
        return super().get_default() if self.has_default() else None

    # --- plaintext shape (overridden by the JSON variant) ---
    def to_text(self, value) -> str:
        if not isinstance(value, str):
            raise TypeError(f"{self.name} takes a string")
        if value == MASK:
            # The mask is what dumpdata and forms show; loading it back would
            # silently replace the real secret with the mask.
            raise ValueError(f"{self.name} was given the mask, not a secret")
        return value

    def from_text(self, text: str):
        return text

    # --- binding ---
    def associated_data(self, instance) -> bytes:
        if instance.client_id is None or instance.public_id is None:
            raise ImproperlyConfigured(f"{self.model.__name__} needs client_id and public_id before {self.name} is sealed")
        return crypto.associated_data(
            table=self.model._meta.db_table, column=self.column, client_id=instance.client_id, row_id=str(instance.public_id)
        )

    def to_secret(self, value, instance):
        if value is None:
            return None
        if isinstance(value, Sealed):
            return Secret(sealed=str(value))._bind(instance, self)
        if isinstance(value, Secret):
            source = value._instance
            if source is not None and source is not instance and value._plaintext is None:
                if value._field is self and source.pk is not None and source.pk == instance.pk:
                    # The same row loaded again: a deferred secret read for
                    # the first time, or refresh_from_db(). Its sealed value
                    # opens here as it is; decrypting would bypass reveal().
                    return Secret(sealed=value._sealed)._bind(instance, self)
                # A sealed value from another row would not open here: carry
                # the plaintext over instead.
                return Secret(plaintext=self.to_text(value.reveal()))._bind(instance, self)
            return value._bind(instance, self)
        return Secret(plaintext=self.to_text(value))._bind(instance, self)

    # --- database ---
    def from_db_value(self, value, expression, connection):
        return None if value is None else Sealed(value)

    def pre_save(self, model_instance, add):
        secret = getattr(model_instance, self.attname)
        return None if secret is None else Sealed(secret.seal())

    def get_prep_value(self, value):
        if value is None:
            return None
        if isinstance(value, Sealed):
            return str(value)
        if isinstance(value, Secret):
            return value.seal()
        raise TypeError(
            f"{self.model.__name__}.{self.name} is encrypted per row: assign it on an instance and save(); "
            "it cannot be written with update() or compared by value"
        )

    def value_to_string(self, obj):
        # Serializers and dumpdata never see the plaintext.
        return MASK

    def formfield(self, **kwargs):
        return None


class EncryptedJSONField(EncryptedTextField):
    """A structured secret (a dict), e.g. Salesforce's client id, client
    secret and refresh token, encrypted as one JSON document."""

    def to_text(self, value) -> str:
        if not isinstance(value, dict):
            raise TypeError(f"{self.name} takes a dict")
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    def from_text(self, text: str):
        return json.loads(text)
