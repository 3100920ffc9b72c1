"""Sign-in providers: GitHub, Google, Discord and any OpenID Connect provider, through
Authlib's OAuth 2 client. Every provider goes through the same steps (authorization code
with PKCE, ``state`` bound to this browser; for OpenID Connect a signed ``id_token``
whose ``nonce`` must be ours); only the endpoints and the reading of who the person is
differ per provider.

A provider is offered once its client id and secret are set
(``HEDGEROW_OAUTH_<PROVIDER>_CLIENT_ID`` / ``_SECRET``; the generic one also needs
``HEDGEROW_OAUTH_OIDC_ISSUER``).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from hedgerow.config import Settings, get_settings
from hedgerow.errors import AppError, NotFound
from hedgerow.i18n import gettext as _

log = logging.getLogger(__name__)

HTTP_TIMEOUT_SECONDS = 10.0
# Discovery documents and key sets change rarely; keys rotate with overlap, so an hour
# is safe, and an unknown key id refetches at once.
DISCOVERY_CACHE_SECONDS = 3600
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


@dataclass(frozen=True)
class Provider:
    name: str
    title: str
    client_id: str
    client_secret: str
    scope: str
    # OpenID Connect: endpoints from this discovery document, and an id_token checked.
    discovery_url: str | None = None
    authorize_url: str | None = None
    token_url: str | None = None
    userinfo_url: str | None = None

    @property
    def openid(self) -> bool:
        return self.discovery_url is not None


@dataclass(frozen=True)
class ProviderProfile:
    """Who the provider says the person is."""

    provider: str
    subject: str
    email: str | None
    email_verified: bool
    username_hint: str | None
    display: str | None


def configured_providers(settings: Settings | None = None) -> list[Provider]:
    s = settings or get_settings()
    providers: list[Provider] = []
    if s.oauth_github_client_id and s.oauth_github_client_secret:
        providers.append(
            Provider(
                "github",
                "GitHub",
                s.oauth_github_client_id,
                s.oauth_github_client_secret,
                "read:user user:email",
                authorize_url="https://github.com/login/oauth/authorize",
                token_url="https://github.com/login/oauth/access_token",  # noqa: S106 - an endpoint
                userinfo_url="https://api.github.com/user",
            )
        )
    if s.oauth_google_client_id and s.oauth_google_client_secret:
        providers.append(
            Provider(
                "google",
                "Google",
                s.oauth_google_client_id,
                s.oauth_google_client_secret,
                "openid email profile",
                discovery_url="https://accounts.google.com/.well-known/openid-configuration",
            )
        )
    if s.oauth_discord_client_id and s.oauth_discord_client_secret:
        providers.append(
            Provider(
                "discord",
                "Discord",
                s.oauth_discord_client_id,
                s.oauth_discord_client_secret,
                "identify email",
                authorize_url="https://discord.com/oauth2/authorize",
                token_url="https://discord.com/api/oauth2/token",  # noqa: S106 - an endpoint
                userinfo_url="https://discord.com/api/users/@me",
            )
        )
    if s.oauth_oidc_client_id and s.oauth_oidc_client_secret and s.oauth_oidc_issuer:
        issuer = s.oauth_oidc_issuer.rstrip("/")
        providers.append(
            Provider(
                "oidc",
                s.oauth_oidc_name,
                s.oauth_oidc_client_id,
                s.oauth_oidc_client_secret,
                "openid email profile",
                discovery_url=f"{issuer}/.well-known/openid-configuration",
            )
        )
    return providers


def sign_in_providers() -> list[Provider]:
    """For the templates: the buttons to show."""
    return configured_providers()


def get_provider(name: str) -> Provider:
    for provider in configured_providers():
        if provider.name == name:
            return provider
    raise NotFound(_("That sign-in provider does not exist."))


def redirect_uri(provider: Provider) -> str:
    return f"{get_settings().base_url.rstrip('/')}/auth/{provider.name}/callback"


def provider_failed(provider: Provider, detail: str) -> AppError:
    return AppError(
        "oauth_failed",
        _(
            "%(provider)s could not complete the sign-in (%(detail)s). Please try again.",
            provider=provider.title,
            detail=detail,
        ),
        502,
    )


# --- discovery, cached ---------------------------------------------------------------

_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_cache_lock = threading.Lock()


def _fetch_json(url: str, *, fresh: bool = False) -> dict[str, Any]:
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(url)
    if cached is not None and not fresh and now - cached[0] < DISCOVERY_CACHE_SECONDS:
        return cached[1]
    response = httpx.get(url, timeout=HTTP_TIMEOUT_SECONDS)
    response.raise_for_status()
    document = response.json()
    if not isinstance(document, dict):
        raise ValueError(f"{url} did not answer with a JSON object")
    with _cache_lock:
        _cache[url] = (now, document)
    return document


@dataclass(frozen=True)
class Endpoints:
    authorize_url: str
    token_url: str
    userinfo_url: str | None
    issuer: str | None = None
    jwks_uri: str | None = None


def endpoints(provider: Provider) -> Endpoints:
    if provider.discovery_url is None:
        assert provider.authorize_url and provider.token_url
        return Endpoints(provider.authorize_url, provider.token_url, provider.userinfo_url)
    try:
        document = _fetch_json(provider.discovery_url)
        return Endpoints(
            authorize_url=document["authorization_endpoint"],
            token_url=document["token_endpoint"],
            userinfo_url=document.get("userinfo_endpoint"),
            issuer=document["issuer"],
            jwks_uri=document["jwks_uri"],
        )
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        log.warning("discovery for %s failed: %s", provider.name, exc)
        raise provider_failed(provider, "its configuration could not be read") from exc


# --- the flow --------------------------------------------------------------------------


def _client(provider: Provider) -> OAuth2Client:
    return OAuth2Client(
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        scope=provider.scope,
        redirect_uri=redirect_uri(provider),
        code_challenge_method="S256",
        timeout=HTTP_TIMEOUT_SECONDS,
    )


@dataclass(frozen=True)
class Flow:
    """What this browser must bring back from the provider (kept in a signed cookie)."""

    provider: str
    state: str
    nonce: str
    code_verifier: str

    def to_dict(self) -> dict[str, str]:
        return {
            "provider": self.provider,
            "state": self.state,
            "nonce": self.nonce,
            "code_verifier": self.code_verifier,
        }


def start(provider: Provider) -> tuple[str, Flow]:
    """The provider's authorization URL, and the flow to remember."""
    flow = Flow(
        provider=provider.name,
        state=secrets.token_urlsafe(24),
        nonce=secrets.token_urlsafe(24),
        code_verifier=secrets.token_urlsafe(48),
    )
    extra = {"nonce": flow.nonce} if provider.openid else {}
    with _client(provider) as client:
        url, _ = client.create_authorization_url(
            endpoints(provider).authorize_url,
            state=flow.state,
            code_verifier=flow.code_verifier,
            **extra,
        )
    return url, flow


def finish(provider: Provider, flow: Flow, query: dict[str, str]) -> ProviderProfile:
    """Check what came back to the callback and ask the provider who signed in."""
    if flow.provider != provider.name or not hmac.compare_digest(
        query.get("state", ""), flow.state
    ):
        raise AppError(
            "oauth_state_mismatch",
            _(
                "This sign-in answer does not belong to the sign-in started in this browser. "
                "Please start again."
            ),
            400,
        )
    if error := query.get("error"):
        description = query.get("error_description") or error
        raise AppError(
            "oauth_denied",
            _(
                "%(provider)s did not sign you in: %(reason)s. Nothing was changed.",
                provider=provider.title,
                reason=description[:200],
            ),
            400,
        )
    code = query.get("code")
    if not code:
        raise provider_failed(provider, "no authorization code came back")
    where = endpoints(provider)
    with _client(provider) as client:
        try:
            token = client.fetch_token(where.token_url, code=code, code_verifier=flow.code_verifier)
        except Exception as exc:  # Authlib's OAuthError, transport errors, bad JSON
            log.warning("token exchange with %s failed: %s", provider.name, exc)
            raise provider_failed(provider, "the code could not be exchanged") from exc
        claims: dict[str, Any] = {}
        if provider.openid:
            claims = _checked_id_token(provider, where, token.get("id_token"), flow.nonce)
        info = _userinfo(provider, client, where)
    return _profile(provider, claims, info)


def _checked_id_token(
    provider: Provider, where: Endpoints, id_token: object, nonce: str
) -> dict[str, Any]:
    if not isinstance(id_token, str):
        raise provider_failed(provider, "no id_token came back")
    assert where.jwks_uri is not None
    try:
        try:
            decoded = jwt.decode(id_token, _keys(where.jwks_uri), algorithms=ID_TOKEN_ALGORITHMS)
        except ValueError:
            # An unknown key id: the provider rotated its keys since we cached them.
            decoded = jwt.decode(
                id_token, _keys(where.jwks_uri, fresh=True), algorithms=ID_TOKEN_ALGORITHMS
            )
        jwt.JWTClaimsRegistry(
            leeway=60,
            iss={"essential": True, "value": where.issuer or ""},
            aud={"essential": True, "value": provider.client_id},
            sub={"essential": True},
            exp={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError, httpx.HTTPError) as exc:
        log.warning("id_token from %s refused: %s", provider.name, exc)
        raise AppError(
            "oauth_id_token_invalid",
            _(
                "%(provider)s sent a sign-in token we cannot trust. Nothing was changed.",
                provider=provider.title,
            ),
            400,
        ) from exc
    if not hmac.compare_digest(str(decoded.claims.get("nonce", "")), nonce):
        raise AppError(
            "oauth_nonce_mismatch",
            _(
                "The answer of %(provider)s was not made for this sign-in (its nonce differs). "
                "Please start again.",
                provider=provider.title,
            ),
            400,
        )
    return dict(decoded.claims)


def _keys(jwks_uri: str, *, fresh: bool = False) -> KeySet:
    return KeySet.import_key_set(_fetch_json(jwks_uri, fresh=fresh))  # type: ignore[arg-type]


def _userinfo(provider: Provider, client: OAuth2Client, where: Endpoints) -> dict[str, Any]:
    if where.userinfo_url is None:
        return {}
    try:
        response = client.get(where.userinfo_url)
        response.raise_for_status()
        info: dict[str, Any] = response.json()
        if provider.name == "github" and not info.get("email_verified"):
            # /user shows only a public address; the verified primary one is listed here.
            emails = client.get("https://api.github.com/user/emails")
            emails.raise_for_status()
            primary = next((e for e in emails.json() if e.get("primary")), None)
            if primary is not None:
                info["email"] = primary.get("email")
                info["email_verified"] = bool(primary.get("verified"))
    except Exception as exc:  # transport errors, error statuses, bad JSON
        log.warning("userinfo from %s failed: %s", provider.name, exc)
        raise provider_failed(provider, "who you are could not be read") from exc
    return info


def _profile(provider: Provider, claims: dict[str, Any], info: dict[str, Any]) -> ProviderProfile:
    if provider.openid:
        subject = str(claims["sub"])
        if info.get("sub") not in (None, subject):
            # OpenID Connect Core 5.3.2: a userinfo answer about someone else is refused.
            raise provider_failed(provider, "its answers disagree about who you are")
        merged = {**info, **claims}
        username = merged.get("preferred_username") or merged.get("nickname")
        display = merged.get("name")
    elif provider.name == "github":
        merged, subject = info, str(info.get("id", ""))
        username, display = info.get("login"), info.get("name") or info.get("login")
    else:  # discord
        merged, subject = info, str(info.get("id", ""))
        username = info.get("username")
        display = info.get("global_name") or info.get("username")
        merged["email_verified"] = bool(info.get("verified"))
    if not subject:
        raise provider_failed(provider, "it did not say who you are")
    email = merged.get("email")
    return ProviderProfile(
        provider=provider.name,
        subject=subject[:255],
        email=str(email)[:254] if email else None,
        email_verified=merged.get("email_verified") is True,
        username_hint=str(username)[:64] if username else None,
        display=str(display)[:255] if display else None,
    )
