"""The dependencies: floors at fixed releases, one lock file that every install uses, passlib's
maintained fork, and python-jose kept to signed tokens with pinned algorithms."""

import base64
import json
import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT
from tests.factories import bearer

# Releases that fix the advisories the issue names (Range header and form limits in starlette,
# multipart parsing in python-multipart, chunked-encoding smuggling in h11, JWE and algorithm
# confusion in python-jose).
FIXED = {
    "starlette": "1.5.1",
    "python-multipart": "0.0.27",
    "h11": "0.16.0",
    "python-jose": "3.5.0",
    "libpass": "1.9.1",
}


def _pyproject() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return [Requirement(name) for name in names]


def _locked() -> dict[str, tuple[Version, str]]:
    """Each locked package: its version and its entry (with hashes)."""
    text = (ROOT / "requirements.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text)
    found = {}
    for entry in entries:
        match = re.match(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", entry)
        if match:
            found[canonicalize_name(match.group(1))] = (Version(match.group(2)), entry)
    return found


def test_floors_are_at_fixed_releases() -> None:
    floors = {canonicalize_name(r.name): r.specifier for r in _pyproject()}
    for name, fixed in FIXED.items():
        specifier = floors[canonicalize_name(name)]
        assert specifier, f"{name} has no floor"
        below = Version(fixed)
        older = Version(f"{below.major}.{below.minor}.{max(below.micro - 1, 0)}")
        assert below in specifier and (older == below or older not in specifier), (name, specifier)


def test_the_lock_pins_every_dependency_with_hashes_at_or_above_the_floors() -> None:
    locked = _locked()
    for requirement in _pyproject():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in requirements.lock: run scripts/lock"
        version, entry = locked[name]
        assert version in requirement.specifier, (name, version, requirement.specifier)
        assert "--hash=sha256:" in entry
    assert "passlib" not in locked  # libpass provides the passlib package instead
    for name, fixed in FIXED.items():
        assert locked[canonicalize_name(name)][0] >= Version(fixed)


def test_every_install_uses_the_lock() -> None:
    lib = (ROOT / "scripts" / "lib.sh").read_text()
    assert "--require-hashes -r requirements.lock" in lib
    assert "--no-deps -e ." in lib
    assert "uv pip compile" in (ROOT / "scripts" / "lock").read_text()


def test_passlib_is_the_maintained_fork() -> None:
    from importlib import metadata

    import passlib

    assert Version(metadata.version("libpass")) >= Version(FIXED["libpass"])
    assert Version(passlib.__version__) >= Version(FIXED["libpass"])


def test_no_code_uses_jwe() -> None:
    sources = [p.read_text() for p in (ROOT / "cure").rglob("*.py")]
    assert not [s for s in sources if re.search(r"\bjwe\b", s)]


async def test_an_encrypted_token_is_refused(client) -> None:
    def part(value: object) -> str:
        raw = json.dumps(value).encode() if not isinstance(value, bytes) else value
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    # A JWE in compact form (five parts), as an attacker would send one to reach jose's JWE code.
    header = {"alg": "dir", "enc": "A256GCM", "zip": "DEF", "typ": "at+jwt"}
    jwe = ".".join([part(header), "", part(b"\0" * 12), part(b"x" * 64), part(b"\0" * 16)])
    answer = await client.get("/v1/crm/customers/me", headers=bearer(jwe))
    assert answer.status_code == 401
