from tests.mail_server import inbox
from tests.oidc_provider import oidc, oidc_provider_server

__all__ = ["inbox", "oidc", "oidc_provider_server"]
