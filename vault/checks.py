from django.core import checks

from vault.keyring import KeyringError, keyring


@checks.register(checks.Tags.security)
def vault_keys_configured(app_configs, **kwargs):
    """A missing, short or malformed VAULT_KEYS stops start-up; the message
    names the variable and the key's position, never its value."""
    try:
        keyring()
    except KeyringError as error:
        return [checks.Error(str(error), id="vault.E001")]
    return []
