"""`cure admin create`: the only way to make an admin; the password never comes from argv."""

import os
import subprocess
import sys

from tests.conftest import ROOT
from tests.factories import PASSWORD, unique_email


def _cure(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cure", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ.copy(),
        timeout=60,
    )


async def test_admin_create_reads_the_password_from_stdin(client) -> None:
    email = unique_email()
    done = _cure(
        "admin", "create", "--email", email, "--name", "First Admin", stdin=PASSWORD + "\n"
    )
    assert done.returncode == 0, done.stderr
    assert email in done.stdout
    assert PASSWORD not in done.stdout + done.stderr
    login = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200
    assert "admin" in login.json()["scope"].split()
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert (await client.get("/v1/admin/customers", headers=headers)).status_code == 200

    again = _cure("admin", "create", "--email", email, "--name", "Again", stdin=PASSWORD + "\n")
    assert again.returncode == 1
    assert "exists already" in again.stderr


def test_admin_create_refuses_weak_passwords_and_bad_input() -> None:
    email = unique_email()
    weak = _cure("admin", "create", "--email", email, "--name", "A", stdin=email + "\n")
    assert weak.returncode == 1
    assert "must not be the email address" in weak.stderr
    bad = _cure("admin", "create", "--email", "not-an-email", "--name", "A", stdin=PASSWORD)
    assert bad.returncode == 1
    assert "email" in bad.stderr
    no_password_flag = _cure(
        "admin", "create", "--email", email, "--name", "A", "--password", PASSWORD, stdin=""
    )
    assert no_password_flag.returncode == 2  # there is no such option
