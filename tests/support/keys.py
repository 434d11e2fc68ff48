"""Real keys, real signatures, Better Auth-shaped claims and a real JWKS server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from backend.auth import JwksCache
from backend.settings import Settings

LONG_SECRET = b"k" * 16 + b"0123456789abcdef" * 3  # 64 bytes: long enough for HS512
ISSUER = "https://auth.example.test"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: Any) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def claims(sub: Any = "user_1", *, ttl: int = 900, **extra: Any) -> dict[str, Any]:
    """Claims shaped like Better Auth's: sub, iat, exp (+ whatever the test adds or drops)."""
    now = int(time.time())
    body: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + ttl}
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def hs_forge(payload: dict[str, Any], key: bytes, alg: str = "HS256", **header: Any) -> str:
    """HMAC-sign by hand, with any bytes as key (PyJWT refuses PEM keys, as it should)."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signing_input = f"{b64json({'alg': alg, 'typ': 'JWT', **header})}.{b64json(payload)}"
    signature = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(signature)}"


@dataclass
class SigningKey:
    """A private key, its public JWK (with kid) and the algorithm it signs with."""

    kid: str
    alg: str
    private: Any
    jwk: dict[str, Any]

    def sign(self, payload: dict[str, Any], **header: Any) -> str:
        headers = {"kid": self.kid, **header}
        return jwt.encode(payload, self.private, algorithm=self.alg, headers=headers)


def ed25519_key(kid: str = "ed-1") -> SigningKey:
    private = ed25519.Ed25519PrivateKey.generate()
    jwk = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKey(kid, "EdDSA", private, {**jwk, "kid": kid, "alg": "EdDSA"})


def ec_key(
    kid: str = "ec-1", curve: ec.EllipticCurve | None = None, alg: str = "ES256"
) -> SigningKey:
    private = ec.generate_private_key(curve or ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKey(kid, alg, private, {**jwk, "kid": kid, "use": "sig"})


def rsa_key(kid: str = "rsa-1", alg: str = "RS256", bits: int = 2048) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKey(kid, alg, private, {**jwk, "kid": kid})


class FakeClock:
    """Monotonic clock the test moves by hand, for TTL and cooldown."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class JwksServer:
    """A JWKS endpoint whose keys, health and latency the test controls; counts requests."""

    keys: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    body: bytes | None = None  # raw body instead of the key set
    delay: float = 0.0
    requests: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/auth/jwks"

    def start(self) -> None:
        """Serve (again, on the same port if it ran before)."""
        owner = self
        self._stop = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner._lock:
                    owner.requests += 1
                if owner.delay and owner._stop.wait(owner.delay):
                    return
                body = owner.body
                if body is None:
                    body = json.dumps({"keys": owner.keys}).encode()
                try:
                    self.send_response(owner.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Take the endpoint down: connections are refused from now on."""
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


@contextmanager
def running_jwks(keys: list[dict[str, Any]]) -> Iterator[JwksServer]:
    server = JwksServer(keys=list(keys))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def verifier_settings(**overrides: Any) -> Settings:
    """Settings for a token verifier alone: nothing read from the environment or a .env file."""
    base: dict[str, Any] = {"todo_env": "test", "database_url": "sqlite:///:memory:"}
    base.update(overrides)
    return Settings(_env_file=None, **base)


def cache_for(settings: Settings, clock: FakeClock) -> JwksCache:
    """The cache the verifier would build from settings, on a clock the test controls."""
    assert settings.jwks_url is not None
    return JwksCache(
        settings.jwks_url,
        timeout_seconds=settings.jwks_timeout_seconds,
        ttl_seconds=settings.jwks_cache_ttl_seconds,
        refetch_cooldown_seconds=settings.jwks_refetch_cooldown_seconds,
        max_stale_seconds=settings.jwks_max_stale_seconds,
        clock=clock,
    )


def better_auth_claims(sub: Any = "user_1", **extra: Any) -> dict[str, Any]:
    """Claims as Better Auth's JWT plugin issues them (iss = aud = base URL, 900 s lifetime)."""
    profile = {"id": sub, "email": "a@example.test", "name": "A", "emailVerified": True}
    return claims(sub, **{"iss": ISSUER, "aud": ISSUER, **profile, **extra})
