"""ProConnect login end to end: the app on loopback against a mock OpenID provider on loopback, whose
signing keys are made by the test (userinfo as a signed JWT, as ProConnect answers it)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
from fastapi import FastAPI, Form, Header, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

import app as webapp
from assistant.settings import Settings, SettingsError
from ingest.index import run_ingest
from tests.appserver import app_settings, serve, write_app_corpus
from tests.servers import free_port
from webui.proconnect import SESSION_COOKIE, email_allowed

CLIENT_ID = "client-assistant"
CLIENT_SECRET = "secret-du-client-" + "x" * 20


@dataclass
class MockProvider:
    """What the test sets: who logs in, and ways for the provider to misbehave."""

    email: str = "agent@mairie-exemple.fr"
    sign_userinfo_with_other_key: bool = False
    wrong_nonce: bool = False
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"}))
    issuer: str = ""
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    authorize_queries: list[dict[str, str]] = field(default_factory=list)
    logouts: list[dict[str, str]] = field(default_factory=list)

    def sign(self, claims: dict[str, Any], key: Any = None) -> str:
        now = int(time.time())
        payload = {"iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 60, **claims}
        key = key or self.key
        return jwt.encode({"alg": "RS256" if isinstance(key, RSAKey) else "ES256", "kid": key.kid}, payload, key)


def provider_app(p: MockProvider) -> FastAPI:
    api = FastAPI()

    @api.get("/api/v2/.well-known/openid-configuration")
    def discovery() -> dict[str, Any]:
        return {"issuer": p.issuer, "authorization_endpoint": p.issuer + "/authorize",
                "token_endpoint": p.issuer + "/token", "userinfo_endpoint": p.issuer + "/userinfo",
                "end_session_endpoint": p.issuer + "/session/end", "jwks_uri": p.issuer + "/jwks",
                "id_token_signing_alg_values_supported": ["RS256", "ES256"]}

    @api.get("/api/v2/jwks")
    def jwks() -> dict[str, Any]:
        return KeySet([p.key]).as_dict(private=False)

    @api.get("/api/v2/authorize")
    def authorize(request: Request) -> Response:
        q = dict(request.query_params)
        p.authorize_queries.append(q)
        # ProConnect refuses any parameter it does not document (Y000400).
        if set(q) != {"response_type", "client_id", "redirect_uri", "scope", "state", "nonce"}:
            return PlainTextResponse("Y000400", status_code=400)
        code = secrets.token_urlsafe(16)
        p.codes[code] = {"nonce": q["nonce"], "redirect_uri": q["redirect_uri"]}
        return RedirectResponse(q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]}), 302)

    @api.post("/api/v2/token")
    def token(grant_type: str = Form(), code: str = Form(), redirect_uri: str = Form(), client_id: str = Form(),
              client_secret: str = Form()) -> Response:
        issued = p.codes.pop(code, None)
        if (issued is None or grant_type != "authorization_code" or client_id != CLIENT_ID
                or client_secret != CLIENT_SECRET or redirect_uri != issued["redirect_uri"]):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        access = secrets.token_urlsafe(16)
        p.tokens[access] = "sub-agent-1"
        nonce = "autre" if p.wrong_nonce else issued["nonce"]
        id_token = p.sign({"sub": "sub-agent-1", "nonce": nonce, "acr": "eidas1"})
        return JSONResponse({"access_token": access, "token_type": "Bearer", "expires_in": 60, "id_token": id_token})

    @api.get("/api/v2/userinfo")
    def userinfo(authorization: str = Header(default="")) -> Response:
        sub = p.tokens.get(authorization.removeprefix("Bearer "))
        if sub is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        key = ECKey.generate_key("P-256", parameters={"kid": "k1"}) if p.sign_userinfo_with_other_key else None
        body = p.sign({"sub": sub, "email": p.email, "given_name": "Camille", "usual_name": "Martin",
                       "siret": "21750001600019"}, key)
        return Response(body, media_type="application/jwt")

    @api.get("/api/v2/session/end")
    def end_session(request: Request) -> Response:
        q = dict(request.query_params)
        p.logouts.append(q)
        return RedirectResponse(q["post_logout_redirect_uri"] + "?" + urlencode({"state": q["state"]}), 302)

    return api


@pytest.fixture(scope="module")
def provider() -> Iterator[MockProvider]:
    p = MockProvider()
    with serve(provider_app(p)) as url:
        p.issuer = url + "/api/v2"
        yield p


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("proconnect")
    corpus = write_app_corpus(root)
    run_ingest(app_settings(root, corpus), progress=False)
    return root, corpus


@pytest.fixture
def live(provider: MockProvider, index: tuple[Path, Path]) -> Iterator[tuple[str, MockProvider]]:
    provider.email = "agent@mairie-exemple.fr"
    provider.sign_userinfo_with_other_key = provider.wrong_nonce = False
    root, corpus = index
    base = app_settings(root, corpus)
    port = free_port()  # the public address (redirect URIs) is known before the app listens
    settings = base.with_overrides(
        proconnect_issuer=provider.issuer, proconnect_client_id=CLIENT_ID, proconnect_client_secret=CLIENT_SECRET,
        public_url=f"http://127.0.0.1:{port}", session_secret="s" * 40,
        allowed_domains=("mairie-exemple.fr",), allowed_emails=("elu@autre-commune.fr",),
        manager_emails=("agent@mairie-exemple.fr",), port=port)
    with serve_on(webapp.build_app(settings), port) as url:
        yield url, provider


def serve_on(app: Any, port: int) -> Any:
    import threading
    from contextlib import contextmanager

    import uvicorn

    @contextmanager
    def run() -> Iterator[str]:
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               timeout_graceful_shutdown=1))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(10)

    return run()


def login(url: str) -> tuple[httpx.Client, httpx.Response]:
    """A browser: follows the redirects between the app and the provider, keeping the app's cookies."""
    browser = httpx.Client(follow_redirects=True, timeout=30)
    return browser, browser.get(url + "/")


def test_without_a_session_the_page_sends_to_proconnect_and_the_api_is_closed(live: tuple[str, MockProvider]) -> None:
    url, _ = live
    page = httpx.get(url + "/", follow_redirects=False)
    assert page.status_code == 302 and page.headers["location"] == "/connexion"
    api = httpx.get(url + "/gradio_api/info")
    assert api.status_code == 401 and "ProConnect" in api.json()["detail"]
    assert httpx.get(url + "/documents/guide-alliances").status_code == 401


def test_login_with_state_nonce_and_signed_userinfo_then_logout(live: tuple[str, MockProvider]) -> None:
    url, provider = live
    browser, page = login(url)
    assert page.status_code == 200 and str(page.url) == url + "/" and "Se déconnecter" in page.text
    query = provider.authorize_queries[-1]
    assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32 and query["state"] != query["nonce"]
    assert query["redirect_uri"] == url + "/connexion/retour" and query["scope"].startswith("openid email")
    session = browser.cookies.get(SESSION_COOKIE)
    claims = jwt.decode(session, OctKey.import_key(b"s" * 40), algorithms=["HS256"]).claims
    assert claims["email"] == "agent@mairie-exemple.fr" and claims["manager"] is True  # on ASSISTANT_MANAGER_EMAILS
    assert browser.get(url + "/gradio_api/info").status_code == 200

    # The API through gradio_client with the browser's session cookie.
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False, headers={"Cookie": f"{SESSION_COOKIE}={session}"})
    answer = client.predict(question="Quelles sont les missions d'un catalyseur territorial ?", api_name="/ask")
    assert answer["citations"]

    # Logout: the provider gets the id_token it issued and a fresh state, and sends the browser back.
    out = browser.get(url + "/deconnexion")
    assert out.status_code == 200 and "Vous êtes déconnecté" in out.text
    logout = provider.logouts[-1]
    assert len(logout["state"]) >= 32 and logout["post_logout_redirect_uri"] == url + "/deconnexion/retour"
    claims = jwt.decode(logout["id_token_hint"], provider.key).claims
    assert claims["sub"] == "sub-agent-1" and claims["aud"] == CLIENT_ID
    assert browser.get(url + "/", follow_redirects=False).status_code == 302


def test_a_proconnect_manager_manages_the_documents_and_an_agent_does_not(live: tuple[str, MockProvider]) -> None:
    url, provider = live
    chief, page = login(url)  # agent@mairie-exemple.fr is on ASSISTANT_MANAGER_EMAILS
    assert page.status_code == 200
    area = chief.get(url + "/gerer")
    assert area.status_code == 200 and 'id="form-ajout"' in area.text
    provider.email = "elu@mairie-exemple.fr"  # allowed in by its domain, but not a manager
    agent, page = login(url)
    assert page.status_code == 200
    refused = agent.get(url + "/gerer")
    assert refused.status_code == 403 and 'id="form-ajout"' not in refused.text
    assert agent.get(url + "/gerer/etat").status_code == 403 and agent.get(url + "/gerer/journal").status_code == 403


def test_refusals_are_french_pages(live: tuple[str, MockProvider]) -> None:
    url, provider = live
    provider.email = "intrus@ailleurs.fr"
    _, page = login(url)
    assert page.status_code == 403 and "intrus@ailleurs.fr n&#x27;a pas accès" in page.text

    provider.email = "agent@mairie-exemple.fr"
    provider.sign_userinfo_with_other_key = True
    _, page = login(url)
    assert page.status_code == 400 and "n&#x27;a pas pu être vérifiée" in page.text

    provider.sign_userinfo_with_other_key = False
    provider.wrong_nonce = True
    _, page = login(url)
    assert page.status_code == 400 and "n&#x27;a pas pu être vérifiée" in page.text

    provider.wrong_nonce = False
    # A callback that did not start here (no flow cookie, or another state): refused before the token call.
    forged = httpx.get(url + "/connexion/retour?code=abc&state=" + "a" * 43)
    assert forged.status_code == 400 and "recommencez" in forged.text
    browser = httpx.Client(follow_redirects=False)
    start = browser.get(url + "/connexion")
    state = parse_qs(urlparse(start.headers["location"]).query)["state"][0]
    assert browser.get(url + "/connexion/retour?code=abc&state=" + state[::-1]).status_code == 400
    # A session cookie signed with another secret is no session.
    forged_session = {SESSION_COOKIE: "eyJhbGciOiJIUzI1NiJ9.e30.x"}
    assert httpx.get(url + "/gradio_api/info", cookies=forged_session).status_code == 401


def test_allow_lists_by_address_and_domain() -> None:
    assert email_allowed("Agent@Mairie-Exemple.fr", (), ("mairie-exemple.fr",))
    assert email_allowed("elu@autre.fr", ("elu@autre.fr",), ())
    assert not email_allowed("elu@sous.mairie-exemple.fr", (), ("mairie-exemple.fr",))
    assert not email_allowed("mairie-exemple.fr", (), ("mairie-exemple.fr",))
    assert not email_allowed("", (), ("",))


def test_settings_for_proconnect() -> None:
    env = {"ASSISTANT_PROCONNECT_ISSUER": "https://proconnect.example/api/v2",
           "ASSISTANT_PROCONNECT_CLIENT_ID": "id", "ASSISTANT_PROCONNECT_CLIENT_SECRET": "secret",
           "ASSISTANT_PUBLIC_URL": "https://assistant.example", "ASSISTANT_SESSION_SECRET": "k" * 32,
           "ASSISTANT_ALLOWED_DOMAINS": " @Mairie-Exemple.fr, prefecture.gouv.fr ",
           "ASSISTANT_MANAGER_EMAILS": "Chef@Mairie-Exemple.fr"}
    s = Settings.from_env(env)
    assert s.proconnect_enabled and s.allowed_domains == ("mairie-exemple.fr", "prefecture.gouv.fr")
    assert s.manager_emails == ("chef@mairie-exemple.fr",)
    public = s.public_dict()
    assert "session_secret" not in public and "proconnect_client_secret" not in public
    with pytest.raises(SettingsError, match="SESSION_SECRET"):
        Settings.from_env(env | {"ASSISTANT_SESSION_SECRET": "court"})
    with pytest.raises(SettingsError, match="liste d'accès"):
        Settings.from_env({k: v for k, v in env.items() if k != "ASSISTANT_ALLOWED_DOMAINS"})
    with pytest.raises(SettingsError, match="pas les deux"):
        Settings.from_env(env | {"ASSISTANT_AUTH": "a:b"})
