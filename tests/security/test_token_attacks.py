"""Token attacks through the HTTP API, in each auth configuration the server supports.

- `hs`: shared secret only (development, `todo-api token`), no iss/aud configured;
- `jwks`: JWKS only over real HTTP on 127.0.0.1, iss = aud = BETTER_AUTH_URL (production);
- `jwks+hs`: both (a migration period); the HS tokens must then carry iss/aud too.

Every attack aims at Alice: it tries to create a task in her list and to read it. Both must be
401 problem+json (never 500), the token must not be echoed back, and her list is unchanged.
The apps are shared per module (rejected requests write nothing), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization

from backend.auth import MAX_TOKEN_BYTES, mint_token
from tests.security.helpers import jwks_settings
from tests.support import (
    ISSUER,
    PG_SKIP_REASON,
    SECRET,
    JwksServer,
    SigningKey,
    User,
    app_client,
    assert_problem,
    assert_unauthorized,
    b64json,
    b64url,
    claims,
    hs_forge,
    make_settings,
    truncate_postgres,
)

VICTIM = "alice"
CONFIGS = ("hs", "jwks", "jwks+hs")
JWKS_CONFIGS = frozenset({"jwks", "jwks+hs"})
ALL_CONFIGS = frozenset(CONFIGS)
pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class AuthSetup:
    """One running app in one auth configuration, and the keys an attacker might reach for."""

    config: str
    client: httpx.AsyncClient
    jwks: JwksServer
    ed: SigningKey
    es: SigningKey
    rs: SigningKey
    outsider: SigningKey

    @property
    def issuer(self) -> str | None:
        return ISSUER if self.config in JWKS_CONFIGS else None

    def claims(self, sub: Any = VICTIM, **changes: Any) -> dict[str, Any]:
        """Claims this server accepts (iss/aud where configured); `None` drops a claim."""
        extra: dict[str, Any] = {"iss": self.issuer, "aud": self.issuer} if self.issuer else {}
        return claims(sub, **{**extra, **changes})

    def sign(self, payload: dict[str, Any], **header: Any) -> str:
        """Sign with the server's real trust anchor: the Ed25519 JWKS key, or the HS secret."""
        if self.config == "hs":
            return hs_forge(payload, SECRET, **header)
        return self.ed.sign(payload, **header)

    def sign_raw(self, payload_segment: str) -> str:
        """A genuine signature over any payload segment (even one that is not JSON)."""
        if self.config == "hs":
            head = b64json({"alg": "HS256", "typ": "JWT"})
            digest = hmac.new(SECRET, f"{head}.{payload_segment}".encode(), hashlib.sha256)
            return f"{head}.{payload_segment}.{b64url(digest.digest())}"
        head = b64json({"alg": "EdDSA", "kid": self.ed.kid})
        signature = self.ed.private.sign(f"{head}.{payload_segment}".encode())
        return f"{head}.{payload_segment}.{b64url(signature)}"

    def valid_token(self, sub: str = VICTIM) -> str:
        if self.config == "hs":
            return mint_token(SECRET, sub)
        return self.sign(self.claims(sub))

    def header_for(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shared_database_url(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
    migrated_postgres: str | None,
) -> str:
    """One database per module and engine: the attacks never write, so apps can be shared."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("attacks") / "todo.db"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite:///{path}"
    if migrated_postgres is None:
        pytest.skip(PG_SKIP_REASON)
    truncate_postgres(migrated_postgres)
    return migrated_postgres


@pytest.fixture(scope="module")
def shared_jwks(ed_key: SigningKey, es_key: SigningKey, rs_key: SigningKey) -> Iterator[JwksServer]:
    server = JwksServer(keys=[ed_key.jwk, es_key.jwk, rs_key.jwk])
    server.start()
    yield server
    server.stop()


class Apps:
    """One app per auth configuration, started on first use and shared by the module."""

    def __init__(self, database_url: str, jwks: JwksServer, keys: list[SigningKey]) -> None:
        self._database_url = database_url
        self._jwks = jwks
        self._keys = keys
        self._stack = AsyncExitStack()
        self._started: dict[str, AuthSetup] = {}

    async def get(self, config: str) -> AuthSetup:
        if config not in self._started:
            url, jwks_url = self._database_url, self._jwks.url
            if config == "hs":
                settings = make_settings(url)
            elif config == "jwks":
                settings = jwks_settings(url, jwks_url)
            else:
                settings = jwks_settings(url, jwks_url, better_auth_secret=SECRET.decode())
            client = await self._stack.enter_async_context(app_client(settings))
            self._started[config] = AuthSetup(config, client, self._jwks, *self._keys)
        return self._started[config]

    async def aclose(self) -> None:
        await self._stack.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def apps(
    shared_database_url: str,
    shared_jwks: JwksServer,
    ed_key: SigningKey,
    es_key: SigningKey,
    rs_key: SigningKey,
    outsider_key: SigningKey,
) -> AsyncIterator[Apps]:
    started = Apps(shared_database_url, shared_jwks, [ed_key, es_key, rs_key, outsider_key])
    yield started
    await started.aclose()


def _public_pem(key: SigningKey) -> bytes:
    return key.private.public_key().public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _raw_public(key: SigningKey) -> bytes:
    x = str(key.jwk["x"])
    return base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))


def _now() -> int:
    return int(time.time())


def _with_segment(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


Attack = Callable[[AuthSetup], str]

# name -> (threat, configurations where it is meaningful, token builder)
ATTACKS: dict[str, tuple[str, frozenset[str], Attack]] = {
    "alg-none": (
        "unsigned token (alg none, empty signature) accepted as valid",
        ALL_CONFIGS,
        lambda s: f"{b64json({'alg': 'none', 'typ': 'JWT'})}.{b64json(s.claims())}.",
    ),
    "alg-NONE-with-signature": (
        "case variants of 'none' slipping past a case-sensitive deny list",
        ALL_CONFIGS,
        lambda s: f"{b64json({'alg': 'NONE', 'kid': 'ed-1'})}.{b64json(s.claims())}.AAAA",
    ),
    "key-confusion-pem": (
        "HS256 signed with the JWKS public key (PEM) verified as an HMAC secret",
        JWKS_CONFIGS,
        lambda s: hs_forge(s.claims(), _public_pem(s.rs), kid=s.rs.kid),
    ),
    "key-confusion-jwk": (
        "HS256 signed with the published JWK (JSON) used as the HMAC secret",
        JWKS_CONFIGS,
        lambda s: hs_forge(s.claims(), json.dumps(s.ed.jwk).encode(), kid=s.ed.kid),
    ),
    "key-confusion-raw": (
        "HS256 signed with the raw Ed25519 public key bytes (the JWK's x) as secret",
        JWKS_CONFIGS,
        lambda s: hs_forge(s.claims(), _raw_public(s.ed), kid=s.ed.kid),
    ),
    "unknown-kid": (
        "a token signed by the attacker's own key under a kid the issuer never published",
        JWKS_CONFIGS,
        lambda s: s.outsider.sign(s.claims()),
    ),
    "spoofed-kid": (
        "the attacker's key signing under the kid of a real published key",
        JWKS_CONFIGS,
        lambda s: s.outsider.sign(s.claims(), kid=s.ed.kid),
    ),
    "embedded-jwk-and-jku": (
        "header parameters (jwk, jku, x5u) that point the verifier at the attacker's key",
        JWKS_CONFIGS,
        lambda s: s.outsider.sign(
            s.claims(),
            kid=s.ed.kid,
            jwk=s.outsider.jwk,
            jku="http://127.0.0.1:9/jwks",
            x5u="http://127.0.0.1:9/x5c",
        ),
    ),
    "alg-key-mismatch": (
        "an ES256 token under an Ed25519 kid (algorithm not bound to the key)",
        JWKS_CONFIGS,
        lambda s: s.es.sign(s.claims(), kid=s.ed.kid),
    ),
    "wrong-iss": (
        "a genuine key's token issued for another issuer",
        JWKS_CONFIGS,
        lambda s: s.sign(s.claims(iss="https://evil.example.test")),
    ),
    "missing-iss": (
        "issuer check skipped when iss is absent",
        JWKS_CONFIGS,
        lambda s: s.sign(s.claims(iss=None)),
    ),
    "wrong-aud": (
        "a token minted for another audience (another app of the same issuer)",
        JWKS_CONFIGS,
        lambda s: s.sign(s.claims(aud="https://other-app.example.test")),
    ),
    "missing-aud": (
        "audience check skipped when aud is absent",
        JWKS_CONFIGS,
        lambda s: s.sign(s.claims(aud=None)),
    ),
    "hs-wrong-iss": (
        "a shared-secret token without the configured issuer (jwks+hs: HS is held to iss/aud too)",
        frozenset({"jwks+hs"}),
        lambda s: mint_token(SECRET, VICTIM, issuer="https://evil.example.test", audience=ISSUER),
    ),
    "expired": (
        "replay of an expired token (beyond the clock-skew leeway)",
        ALL_CONFIGS,
        lambda s: s.sign(s.claims(iat=_now() - 1000, exp=_now() - 120)),
    ),
    "nbf-in-future": (
        "a token used before its nbf",
        ALL_CONFIGS,
        lambda s: s.sign(s.claims(nbf=_now() + 3600)),
    ),
    "iat-in-future": (
        "a token dated in the future",
        ALL_CONFIGS,
        lambda s: s.sign(s.claims(iat=_now() + 3600)),
    ),
    "missing-exp": (
        "a token that never expires",
        ALL_CONFIGS,
        lambda s: s.sign(s.claims(exp=None)),
    ),
    "exp-as-string": (
        "a non-numeric exp that a lax parser reads as 'no expiry' or far future",
        ALL_CONFIGS,
        lambda s: s.sign(s.claims(exp=str(_now() + 3600))),
    ),
    "missing-sub": ("a token naming no user", ALL_CONFIGS, lambda s: s.sign(s.claims(sub=None))),
    "sub-not-a-string": (
        "a numeric sub compared loosely with the path",
        ALL_CONFIGS,
        lambda s: s.sign(s.claims(sub=12345)),
    ),
    "sub-path-traversal": (
        "a sub that is not a user id (path characters)",
        ALL_CONFIGS,
        lambda s: s.sign(s.claims(sub="bob/../alice")),
    ),
    "oversized": (
        "a validly signed token over 8 KiB (parser / memory exhaustion)",
        ALL_CONFIGS,
        lambda s: s.sign(s.claims(padding="x" * MAX_TOKEN_BYTES)),
    ),
    "unknown-crit": (
        "a critical header extension the verifier does not understand (RFC 7515 4.1.11)",
        ALL_CONFIGS,
        lambda s: s.sign(s.claims(), crit=["exp-ext"], **{"exp-ext": 1}),
    ),
    "garbage-header": (
        "garbage in the header segment",
        ALL_CONFIGS,
        lambda s: _with_segment(s.valid_token(), 0, "!!$$**"),
    ),
    "garbage-payload": (
        "garbage in the payload segment",
        ALL_CONFIGS,
        lambda s: _with_segment(s.valid_token(), 1, "@@@@"),
    ),
    "garbage-signature": (
        "garbage in the signature segment",
        ALL_CONFIGS,
        lambda s: _with_segment(s.valid_token(), 2, "%%%%"),
    ),
    "header-not-json": (
        "a header that is base64 but not JSON",
        ALL_CONFIGS,
        lambda s: _with_segment(s.valid_token(), 0, b64url(b"not json")),
    ),
    "header-json-array": (
        "a header that is JSON but not an object",
        ALL_CONFIGS,
        lambda s: _with_segment(s.valid_token(), 0, b64json([1])),
    ),
    "header-deeply-nested": (
        "a header nested deeply enough to blow the JSON parser's recursion",
        ALL_CONFIGS,
        lambda s: _with_segment(
            s.valid_token(), 0, b64url(b"[" * 5000 + b"]" * 5000)[: MAX_TOKEN_BYTES - 200]
        ),
    ),
    "signed-payload-not-json": (
        "a genuine signature over a payload that is not JSON (parsing after verification)",
        ALL_CONFIGS,
        lambda s: s.sign_raw(b64url(b"[1,")),
    ),
    "signed-payload-json-array": (
        "a genuine signature over a JSON array payload (claims that are not an object)",
        ALL_CONFIGS,
        lambda s: s.sign_raw(b64json([VICTIM])),
    ),
    "tampered-signature": (
        "a bit flipped in a genuine signature",
        ALL_CONFIGS,
        lambda s: _with_segment(s.valid_token(), 2, _flip(s.valid_token().split(".")[2])),
    ),
    "substituted-payload": (
        "Bob's genuine header and signature glued to a payload naming Alice",
        ALL_CONFIGS,
        lambda s: _with_segment(s.valid_token("bob"), 1, s.valid_token(VICTIM).split(".")[1]),
    ),
    "forged-hs-secret": (
        "HS256 signed with a guessed secret",
        ALL_CONFIGS,
        lambda s: mint_token(b"guessed-secret-" * 4, VICTIM, issuer=s.issuer, audience=s.issuer),
    ),
    "two-segments": (
        "a token with the signature cut off",
        ALL_CONFIGS,
        lambda s: s.valid_token().rsplit(".", 1)[0],
    ),
    "four-segments": (
        "a JWE-like token with an extra segment",
        ALL_CONFIGS,
        lambda s: s.valid_token() + ".AAAA",
    ),
}


def _flip(segment: str) -> str:
    first = "A" if segment[0] != "A" else "B"
    return first + segment[1:]


def _cases() -> list[Any]:
    return [
        pytest.param(config, name, id=f"{config}-{name}")
        for name, (_, configs, _) in ATTACKS.items()
        for config in CONFIGS
        if config in configs
    ]


@pytest.mark.parametrize(("config", "attack"), _cases())
async def test_token_attack_is_401(apps: Apps, config: str, attack: str) -> None:
    """Threat: see ATTACKS[attack][0]; the attacker wants into Alice's list.

    Write and read are both 401 problem+json with a Bearer challenge, the token is not echoed,
    and Alice's list (read with a real token) is still empty.
    """
    auth = await apps.get(config)
    token = ATTACKS[attack][2](auth)
    headers = auth.header_for(token)
    alice = User(VICTIM, auth.valid_token(), auth.header_for(auth.valid_token()))
    before = await auth.client.get(alice.tasks, headers=alice.headers)
    assert before.status_code == 200, before.text
    write = await auth.client.post(alice.tasks, json={"title": "planted"}, headers=headers)
    read = await auth.client.get(alice.tasks, headers=headers)
    for response in (write, read):
        body = assert_unauthorized(response)
        assert token not in response.text
        assert token not in response.headers.get("www-authenticate", "")
        assert body["detail"]
    after = await auth.client.get(alice.tasks, headers=alice.headers)
    assert after.json() == before.json()
    assert "planted" not in after.text


@pytest.mark.parametrize("config", CONFIGS)
async def test_genuine_token_is_accepted(apps: Apps, config: str) -> None:
    """Control: the token each configuration should accept is accepted (else every attack
    'fails' for the wrong reason) and acts only as its subject."""
    auth = await apps.get(config)
    user = User(VICTIM, auth.valid_token(), auth.header_for(auth.valid_token()))
    created = await auth.client.post(user.tasks, json={"title": "mine"}, headers=user.headers)
    assert created.status_code == 201, created.text
    assert created.json()["user_id"] == VICTIM
    listed = await auth.client.get(user.tasks, headers=user.headers)
    assert created.json() in listed.json()
    foreign = await auth.client.get("/api/bob/tasks", headers=user.headers)
    assert_problem(foreign, 403)
