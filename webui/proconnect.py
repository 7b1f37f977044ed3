"""ProConnect login: OpenID Connect authorization-code flow, allow-lists, and logout by redirect.

The flow ProConnect documents for a service provider (« Fournisseur de Service »):

1. ``/connexion``: a random ``state`` and ``nonce`` (43 characters each; ProConnect asks for at least 32) kept
   in a short-lived signed cookie, then a redirect to the provider's ``authorization_endpoint``.
2. ``/connexion/retour?code&state``: the state is checked, the code exchanged at the ``token_endpoint``
   (authlib, ``client_secret_post``), the ``id_token`` verified (signature against the provider's JWKS,
   issuer, audience, expiry, nonce). ProConnect answers ``userinfo`` as a signed JWT (``application/jwt``),
   which authlib's ``userinfo()`` would read as JSON: it is verified here the same way, and its ``sub`` must be
   the id_token's. The e-mail then goes through the allow-lists; the session is a signed cookie (HS256 with
   ``ASSISTANT_SESSION_SECRET``, the same on every replica, so any replica accepts it).
3. ``/deconnexion``: the session cookie goes, and the browser is sent to the ``end_session_endpoint`` with
   ``id_token_hint``, a new ``state`` and ``post_logout_redirect_uri`` (``/deconnexion/retour``, which checks it).

Nothing here reaches the network unless ProConnect is configured, and only when someone logs in.
"""

from __future__ import annotations

import hmac
import html
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey

from assistant.errors import AssistantError
from assistant.settings import Settings

SESSION_COOKIE = "assistant_session"
FLOW_COOKIE = "assistant_oidc"
FLOW_MAX_AGE_S = 600  # the user has ten minutes at the provider
SIGNING_ALGORITHMS = ["RS256", "ES256"]
PUBLIC_PATHS = frozenset({"/connexion", "/connexion/retour", "/deconnexion", "/deconnexion/retour", "/favicon.ico",
                          "/robots.txt"})
LOGIN_REQUIRED = "Connexion requise : connectez-vous avec ProConnect."


class LoginError(AssistantError, RuntimeError):
    """A login that cannot go on (message in French, shown on the page)."""


class AccessDenied(LoginError):
    """A verified agent whose address is on no allow-list."""


@dataclass(frozen=True)
class User:
    email: str
    manager: bool
    given_name: str = ""
    usual_name: str = ""


def email_allowed(email: str, emails: tuple[str, ...], domains: tuple[str, ...]) -> bool:
    email = email.strip().lower()
    domain = email.rpartition("@")[2]
    return bool(domain) and "@" in email and (email in emails or domain in domains)


class ProConnect:
    """The provider's metadata and keys (fetched on first use, keys again when one is unknown)."""

    def __init__(self, settings: Settings, *, http: httpx.Client | None = None) -> None:
        self.settings = settings
        self.issuer = settings.proconnect_issuer.rstrip("/")
        self.http = http or httpx.Client(timeout=10.0, follow_redirects=False)
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._lock = threading.RLock()
        self._session_key = OctKey.import_key(settings.session_secret.encode())

    @property
    def redirect_uri(self) -> str:
        return self.settings.public_url.rstrip("/") + "/connexion/retour"

    @property
    def post_logout_uri(self) -> str:
        return self.settings.public_url.rstrip("/") + "/deconnexion/retour"

    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._metadata is None:
                self._metadata = self._get_json(self.issuer + "/.well-known/openid-configuration")
            return self._metadata

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = self.http.get(url)
            response.raise_for_status()
            return dict(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            raise LoginError("ProConnect est injoignable pour le moment : réessayez dans quelques minutes.") from exc

    def _keyset(self, refresh: bool = False) -> KeySet:
        with self._lock:
            if self._keys is None or refresh:
                self._keys = KeySet.import_key_set(self._get_json(self.metadata()["jwks_uri"]))  # type: ignore[arg-type]
            return self._keys

    def verify(self, token: str, **claims: Any) -> dict[str, Any]:
        """The claims of a JWT signed by the provider: signature (JWKS), issuer, audience, expiry, and ``claims``."""
        try:
            try:
                decoded = jwt.decode(token, self._keyset(), algorithms=SIGNING_ALGORITHMS)
            except JoseError:
                # A key rotated at the provider: fetch its keys once more before refusing.
                decoded = jwt.decode(token, self._keyset(refresh=True), algorithms=SIGNING_ALGORITHMS)
            expected: dict[str, Any] = {
                "iss": {"essential": True, "value": self.metadata().get("issuer", self.issuer)},
                "aud": {"essential": True, "value": self.settings.proconnect_client_id},
                "exp": {"essential": True},
            }
            expected |= {name: {"essential": True, "value": value} for name, value in claims.items()}
            registry: Any = jwt.JWTClaimsRegistry
            registry(leeway=60, **expected).validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise LoginError("La réponse de ProConnect n'a pas pu être vérifiée : reconnectez-vous.") from exc
        return dict(decoded.claims)

    # -- the flow ----------------------------------------------------------------------------------------

    def start(self) -> tuple[str, str]:
        """(URL of the provider's authorization endpoint, signed flow cookie)."""
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        query = {"response_type": "code", "client_id": self.settings.proconnect_client_id,
                 "redirect_uri": self.redirect_uri, "scope": self.settings.proconnect_scopes,
                 "state": state, "nonce": nonce}
        url = self.metadata()["authorization_endpoint"] + "?" + urlencode(query)
        return url, self.sign({"state": state, "nonce": nonce}, FLOW_MAX_AGE_S)

    def finish(self, code: str, state: str, flow_cookie: str | None) -> tuple[User, str]:
        """The user coming back with ``code``, and their id_token (kept for logout)."""
        flow = self.unsign(flow_cookie)
        if not flow or not state or not hmac.compare_digest(str(flow.get("state", "")), state):
            raise LoginError("La connexion a expiré ou ne vient pas de cette page : recommencez.")
        from authlib.integrations.httpx_client import OAuth2Client

        meta = self.metadata()
        client = OAuth2Client(self.settings.proconnect_client_id, self.settings.proconnect_client_secret,
                              token_endpoint_auth_method="client_secret_post", timeout=10.0)
        try:
            token = client.fetch_token(meta["token_endpoint"], code=code, redirect_uri=self.redirect_uri,
                                       grant_type="authorization_code")
        except Exception as exc:  # authlib's OAuthError, httpx's errors: one French sentence
            raise LoginError("ProConnect a refusé la connexion : recommencez.") from exc
        finally:
            client.close()
        id_token = str(token.get("id_token", ""))
        id_claims = self.verify(id_token, nonce=str(flow.get("nonce", "")))
        try:
            response = self.http.get(meta["userinfo_endpoint"],
                                     headers={"Authorization": f"Bearer {token['access_token']}"})
            response.raise_for_status()
        except (httpx.HTTPError, KeyError) as exc:
            raise LoginError("ProConnect n'a pas transmis votre identité : recommencez.") from exc
        if not response.headers.get("content-type", "").startswith("application/jwt"):
            raise LoginError("La réponse de ProConnect n'a pas pu être vérifiée : reconnectez-vous.")
        info = self.verify(response.text.strip(), sub=id_claims["sub"])
        email = str(info.get("email", "")).strip().lower()
        s = self.settings
        if not email_allowed(email, s.allowed_emails, s.allowed_domains):
            raise AccessDenied(f"L'adresse {email or '(inconnue)'} n'a pas accès à cet assistant : demandez l'accès "
                             "à son administrateur.")
        user = User(email, email_allowed(email, s.manager_emails, s.manager_domains),
                    str(info.get("given_name", "")), str(info.get("usual_name", "")))
        return user, id_token

    def logout_url(self, id_token: str) -> tuple[str, str]:
        """(URL of the provider's end_session_endpoint, signed flow cookie holding the logout state)."""
        state = secrets.token_urlsafe(32)
        query = {"id_token_hint": id_token, "state": state, "post_logout_redirect_uri": self.post_logout_uri}
        return (self.metadata()["end_session_endpoint"] + "?" + urlencode(query),
                self.sign({"logout_state": state}, FLOW_MAX_AGE_S))

    # -- signed cookies -----------------------------------------------------------------------------------

    def sign(self, data: Mapping[str, Any], max_age_s: float) -> str:
        now = int(time.time())
        return jwt.encode({"alg": "HS256"}, {**data, "iat": now, "exp": now + int(max_age_s)}, self._session_key)

    def unsign(self, value: str | None) -> dict[str, Any] | None:
        if not value:
            return None
        try:
            decoded = jwt.decode(value, self._session_key, algorithms=["HS256"])
            jwt.JWTClaimsRegistry(exp={"essential": True}).validate(decoded.claims)
        except (JoseError, ValueError):
            return None
        return dict(decoded.claims)

    def has_session(self, cookies: Mapping[str, str]) -> bool:
        return self.session_user(cookies) is not None

    def session_user(self, cookies: Mapping[str, str]) -> User | None:
        data = self.unsign(cookies.get(SESSION_COOKIE))
        if not data or not data.get("email"):
            return None
        return User(str(data["email"]), bool(data.get("manager")), str(data.get("given_name", "")),
                    str(data.get("usual_name", "")))


def _page(title: str, message: str, status: int = 200, link: tuple[str, str] | None = None) -> HTMLResponse:
    more = f'<p><a href="{link[0]}">{html.escape(link[1])}</a></p>' if link else ""
    return HTMLResponse(
        f'<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f"<body><main><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>{more}</main></body></html>",
        status_code=status)


def _set_cookie(response: Response, name: str, value: str, max_age_s: float, secure: bool) -> None:
    # Lax: the provider's redirect back to /connexion/retour is a top-level GET that must carry it.
    response.set_cookie(name, value, max_age=int(max_age_s), httponly=True, samesite="lax", secure=secure, path="/")


def proconnect_router(provider: ProConnect) -> APIRouter:
    router = APIRouter()
    secure = provider.settings.public_url.startswith("https://")
    session_s = provider.settings.session_hours * 3600

    @router.get("/connexion")
    def login() -> Response:
        try:
            url, flow = provider.start()
        except LoginError as exc:
            return _page("Connexion impossible", str(exc), 503)
        response = RedirectResponse(url, status_code=302)
        _set_cookie(response, FLOW_COOKIE, flow, FLOW_MAX_AGE_S, secure)
        return response

    @router.get("/connexion/retour")
    def callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
        if error or not code:
            return _page("Connexion interrompue", "La connexion avec ProConnect n'a pas abouti : recommencez.", 400,
                         ("/connexion", "Se connecter avec ProConnect"))
        try:
            user, id_token = provider.finish(code, state, request.cookies.get(FLOW_COOKIE))
        except LoginError as exc:
            refused = isinstance(exc, AccessDenied)
            response: Response = _page("Accès refusé" if refused else "Connexion impossible", str(exc),
                                       403 if refused else 400, ("/connexion", "Se connecter avec ProConnect"))
            response.delete_cookie(FLOW_COOKIE, path="/")
            return response
        response = RedirectResponse("/", status_code=302)
        session = provider.sign({"email": user.email, "manager": user.manager, "given_name": user.given_name,
                                 "usual_name": user.usual_name, "id_token": id_token}, session_s)
        _set_cookie(response, SESSION_COOKIE, session, session_s, secure)
        response.delete_cookie(FLOW_COOKIE, path="/")
        return response

    @router.get("/deconnexion")
    def logout(request: Request) -> Response:
        data = provider.unsign(request.cookies.get(SESSION_COOKIE)) or {}
        if not data.get("id_token"):
            response: Response = RedirectResponse("/connexion", status_code=302)
        else:
            try:
                url, flow = provider.logout_url(str(data["id_token"]))
            except LoginError as exc:
                response = _page("Déconnexion", str(exc), 503)
            else:
                response = RedirectResponse(url, status_code=302)
                _set_cookie(response, FLOW_COOKIE, flow, FLOW_MAX_AGE_S, secure)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @router.get("/deconnexion/retour")
    def logged_out(request: Request, state: str = "") -> Response:
        flow = provider.unsign(request.cookies.get(FLOW_COOKIE)) or {}
        if not state or not hmac.compare_digest(str(flow.get("logout_state", "")), state):
            response: Response = _page("Déconnexion", "Cette demande de déconnexion ne vient pas de cette page.", 400,
                                       ("/connexion", "Se connecter avec ProConnect"))
        else:
            response = _page("Vous êtes déconnecté", "Votre session est fermée.", 200,
                             ("/connexion", "Se reconnecter avec ProConnect"))
        response.delete_cookie(FLOW_COOKIE, path="/")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return router


class ProConnectGate:
    """ASGI guard: without a valid session, the app page redirects to ``/connexion`` and every other route
    (Gradio's API included) answers 401 with a French sentence."""

    def __init__(self, app: Any, *, logged_in: Callable[[Mapping[str, str]], bool]) -> None:
        self.app = app
        self.logged_in = logged_in

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path", "") in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        from starlette.requests import cookie_parser

        raw = b"; ".join(v for k, v in scope.get("headers", []) if k.lower() == b"cookie")
        if self.logged_in(cookie_parser(raw.decode("latin-1")) if raw else {}):
            await self.app(scope, receive, send)
            return
        if scope.get("path") == "/" and scope.get("method") == "GET":
            response: Response = RedirectResponse("/connexion", status_code=302)
        else:
            from fastapi.responses import JSONResponse

            response = JSONResponse({"detail": LOGIN_REQUIRED}, status_code=401)
        await response(scope, receive, send)
