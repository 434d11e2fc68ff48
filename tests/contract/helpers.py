"""schemathesis configured exactly as `python -m tools.fuzz` configures it, run in-process."""

from __future__ import annotations

from pathlib import Path

from schemathesis.config import SchemathesisConfig

import tools.fuzz_hooks  # noqa: F401  (registers the hooks, as SCHEMATHESIS_HOOKS does for the CLI)
from tests.support import ROOT, User, token_for

CONFIG = ROOT / "tools" / "schemathesis.toml"
# Fixed, so a failure here replays on the next run; tools.fuzz explores other seeds.
SEED = 20261120
# The schema (and with it the token) is built at collection time; outlive a long session.
CONTRACT_USER_ID = "contract-user"
CONTRACT_USER = User(
    id=CONTRACT_USER_ID,
    token=(token := token_for(CONTRACT_USER_ID, ttl_seconds=12 * 3600)),
    headers={"Authorization": f"Bearer {token}"},
)


def contract_config(user: User = CONTRACT_USER, config_path: Path = CONFIG) -> SchemathesisConfig:
    """tools/schemathesis.toml with the user and token in place of its placeholders."""
    text = config_path.read_text(encoding="utf-8")
    text = text.replace("${TODO_FUZZ_USER_ID}", user.id).replace("${TODO_FUZZ_TOKEN}", user.token)
    config = SchemathesisConfig.from_str(text, base_dir=str(config_path.parent))
    config.update(seed=SEED, max_failures=None)
    return config
