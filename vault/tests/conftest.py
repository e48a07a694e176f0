import base64
import os

import pytest


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def vault_key(settings):
    """A fresh key for this test only; the configured one is never used."""
    key = new_key()
    settings.VAULT_KEYS = key
    return key
