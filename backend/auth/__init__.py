"""Bearer-token authentication for tokens issued by Better Auth (JWKS) or the shared secret.

`current_user_id` (or `current_principal`) is what handler scopes use; the app factory builds a
`TokenVerifier` from `resolve_hs_secret(settings)` and stores it on `app.state.token_verifier`.
"""

from .dependency import bearer_token, current_principal, current_user_id
from .dev_secret import dev_secret_path, load_or_create_secret, resolve_hs_secret
from .jwks import JwksCache, JwksKey, parse_jwk, parse_jwk_set
from .policy import MAX_TOKEN_BYTES, SUBJECT_PATTERN, is_valid_subject
from .tokens import mint_token
from .verifier import Principal, TokenVerifier

__all__ = [
    "MAX_TOKEN_BYTES",
    "SUBJECT_PATTERN",
    "JwksCache",
    "JwksKey",
    "Principal",
    "TokenVerifier",
    "bearer_token",
    "current_principal",
    "current_user_id",
    "dev_secret_path",
    "is_valid_subject",
    "load_or_create_secret",
    "mint_token",
    "parse_jwk",
    "parse_jwk_set",
    "resolve_hs_secret",
]
