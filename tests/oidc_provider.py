"""A real OpenID Connect provider on loopback for the tests: a small Starlette app under
uvicorn on 127.0.0.1, speaking discovery, the authorization endpoint (code flow with PKCE
S256 required), the token endpoint (client secret, code verifier checked), userinfo and
JWKS, with RS256-signed id_tokens. The app reaches it through the generic OpenID Connect
provider setting, the same code path as Google.

It signs in whoever ``next_user`` says, at once (no consent page), and can be told to
misbehave: answer with an error, sign a wrong nonce, refuse the code.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.growth.factories import override_settings
from tests.live_server import free_port

CLIENT_ID = "hedgerow-test-client"


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class LoopbackProvider:
    def __init__(self) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client_secret = secrets.token_urlsafe(16)
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig"})
        self.other_key = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
        self.reset()
        self._server: uvicorn.Server | None = None

    def reset(self) -> None:
        self.next_user: dict[str, Any] = {
            "sub": "subject-1",
            "email": "robin@idp.example",
            "email_verified": True,
            "preferred_username": "robin",
            "name": "Robin",
        }
        # None, "error", "wrong_nonce", "token_error", "bad_signature"
        self.misbehave: str | None = None
        self.codes: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}

    # --- endpoints ---------------------------------------------------------------------

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            }
        )

    async def jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return JSONResponse({"error": "invalid_request", "error_description": "PKCE"}, 400)
        redirect = q["redirect_uri"]
        if self.misbehave == "error":
            query = {
                "error": "access_denied",
                "error_description": "The user said no",
                "state": q.get("state", ""),
            }
            return RedirectResponse(f"{redirect}?{urlencode(query)}", status_code=302)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "challenge": q["code_challenge"],
            "nonce": q.get("nonce"),
            "redirect_uri": redirect,
            "user": dict(self.next_user),
        }
        query = {"code": code, "state": q.get("state", "")}
        return RedirectResponse(f"{redirect}?{urlencode(query)}", status_code=302)

    async def token(self, request: Request) -> Response:
        form = await request.form()
        basic = request.headers.get("authorization", "")
        expected = base64.b64encode(f"{CLIENT_ID}:{self.client_secret}".encode()).decode()
        if basic != f"Basic {expected}":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self.codes.pop(str(form.get("code", "")), None)  # a code works once
        if (
            self.misbehave == "token_error"
            or grant is None
            or form.get("grant_type") != "authorization_code"
            or form.get("redirect_uri") != grant["redirect_uri"]
            or s256(str(form.get("code_verifier", ""))) != grant["challenge"]
        ):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        user = grant["user"]
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": user["sub"],
            "iat": now,
            "exp": now + 300,
            "nonce": "not-the-nonce" if self.misbehave == "wrong_nonce" else grant["nonce"],
            "email": user.get("email"),
            "email_verified": user.get("email_verified", False),
            "preferred_username": user.get("preferred_username"),
            "name": user.get("name"),
        }
        key = self.other_key if self.misbehave == "bad_signature" else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, key)
        access_token = secrets.token_urlsafe(16)
        self.tokens[access_token] = user
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            }
        )

    async def userinfo(self, request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        user = self.tokens.get(token)
        if user is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse(user)

    # --- running -----------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/userinfo", self.userinfo),
            ]
        )

    def start(self) -> None:
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        thread = threading.Thread(target=self._server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test OpenID Connect provider did not start")
            time.sleep(0.02)  # polling start-up, bounded by the deadline
        self._thread = thread

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None

    def settings(self) -> dict[str, str]:
        return {
            "oauth_oidc_client_id": CLIENT_ID,
            "oauth_oidc_client_secret": self.client_secret,
            "oauth_oidc_issuer": self.issuer,
            "oauth_oidc_name": "Test Provider",
        }


@pytest.fixture(scope="session")
def oidc_provider_server() -> Iterator[LoopbackProvider]:
    provider = LoopbackProvider()
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture
def oidc(
    oidc_provider_server: LoopbackProvider, monkeypatch: pytest.MonkeyPatch
) -> LoopbackProvider:
    """The running provider, reset, with the app's settings pointing at it."""
    oidc_provider_server.reset()
    override_settings(monkeypatch, **oidc_provider_server.settings())
    return oidc_provider_server
