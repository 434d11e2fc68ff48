"""The one home of the helpers every suite uses: import them from `tests.support`.

Users and tokens, settings builders, databases, problem assertions, tasks through the API, an
app in-process, a live server (shared with tools/), and the contract's operations.
"""

from tests.support.apps import app_client
from tests.support.contract import (
    CONTRACT,
    Operation,
    load_contract,
    operations,
    operations_of,
    resolve,
    user_operations,
    write_contract_with_archive_operation,
)
from tests.support.databases import (
    PG_SKIP_REASON,
    libpq,
    pg_scalar,
    postgres_url,
    reset_postgres_schema,
    truncate_postgres,
)
from tests.support.identity import ROOT, SECRET, User, token_for
from tests.support.keys import (
    ISSUER,
    LONG_SECRET,
    FakeClock,
    JwksServer,
    SigningKey,
    b64json,
    b64url,
    better_auth_claims,
    cache_for,
    claims,
    ec_key,
    ed25519_key,
    hs_forge,
    rsa_key,
    running_jwks,
    verifier_settings,
)
from tests.support.logs import iter_lines
from tests.support.problems import (
    PROBLEM_JSON,
    PROBLEMS,
    assert_problem,
    assert_unauthorized,
)
from tests.support.settings import api_settings, make_settings, server_env
from tests.support.tasks import (
    create_task,
    get_task,
    parse_links,
    parse_utc,
    snapshot,
    snapshots,
)
from tools.live_server import (
    LiveServer,
    ServerFailed,
    free_port,
    running_server,
    start_server,
    stop_server,
)

__all__ = [
    "CONTRACT",
    "ISSUER",
    "LONG_SECRET",
    "PG_SKIP_REASON",
    "PROBLEMS",
    "PROBLEM_JSON",
    "ROOT",
    "SECRET",
    "FakeClock",
    "JwksServer",
    "LiveServer",
    "Operation",
    "ServerFailed",
    "SigningKey",
    "User",
    "api_settings",
    "app_client",
    "assert_problem",
    "assert_unauthorized",
    "b64json",
    "b64url",
    "better_auth_claims",
    "cache_for",
    "claims",
    "create_task",
    "ec_key",
    "ed25519_key",
    "free_port",
    "get_task",
    "hs_forge",
    "iter_lines",
    "libpq",
    "load_contract",
    "make_settings",
    "operations",
    "operations_of",
    "parse_links",
    "parse_utc",
    "pg_scalar",
    "postgres_url",
    "reset_postgres_schema",
    "resolve",
    "rsa_key",
    "running_jwks",
    "running_server",
    "server_env",
    "snapshot",
    "snapshots",
    "start_server",
    "stop_server",
    "token_for",
    "truncate_postgres",
    "user_operations",
    "verifier_settings",
    "write_contract_with_archive_operation",
]
