"""Scope names are written once, in cure/auth/scopes.py: the settings' default scopes are among
them, and no module spells a scope itself."""

import re
from pathlib import Path

from cure.auth import scopes
from cure.config import Settings

ROOT = Path(__file__).resolve().parents[2]
NAMED = {scopes.ACCOUNT_READ, scopes.ACCOUNT_WRITE, scopes.ORDERS_READ, scopes.ORDERS_WRITE}
NAMED |= {scopes.LOGS_WRITE, scopes.ADMIN}


def test_the_default_scopes_are_scopes_the_server_knows(settings: Settings) -> None:
    assert set(settings.default_scopes) <= NAMED
    assert set(scopes.DESCRIPTIONS) >= NAMED


def test_no_module_but_scopes_spells_a_scope() -> None:
    # config.py holds the default list (it may import nothing of CURE's); the test above checks it.
    allowed = {ROOT / "cure/auth/scopes.py", ROOT / "cure/config.py"}
    names = "|".join(re.escape(name) for name in NAMED - {scopes.ADMIN})  # "admin": also a tag
    spelled = re.compile(rf"""["'](?:{names})["']|f["']app:\{{""")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "cure").rglob("*.py"))
        if path not in allowed
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if spelled.search(line)
    ]
    assert found == []
