"""The local mailbox: a real SMTP server that keeps each message under the mail folder, and
`cure mail list` / `cure mail show N` reading them back."""

import subprocess
import sys

from cure.mail.catcher import serve, stored
from cure.mail.sender import send_email
from tests.conftest import ROOT, free_port


def _cure(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cure", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


async def test_caught_mail_is_stored_listed_and_shown(settings, environment, tmp_path) -> None:
    port = free_port()
    folder = tmp_path / "mail"
    ours = settings.model_copy(update={"smtp_port": port, "mail_dir": folder})
    catcher = serve(folder, host="127.0.0.1", port=port)
    try:
        await send_email(ours, to="ana@example.org", subject="Your order", body="It is done.\n")
        await send_email(ours, to="bo@example.org", subject="Reset your password", body="Token x\n")
    finally:
        catcher.stop()

    mails = stored(folder)
    assert [m.number for m in mails] == [1, 2]
    assert [p.name for p in sorted(folder.iterdir())] == ["000001.eml", "000002.eml"]
    assert mails[0].message["X-Envelope-To"] == "ana@example.org"

    env = {**environment, "CURE_MAIL_DIR": str(folder), "CURE_LOG_TO_BROKER": "false"}
    listed = _cure(env, "mail", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert "ana@example.org" in lines[0] and "Your order" in lines[0]
    assert "Reset your password" in lines[1]
    shown = _cure(env, "mail", "show", "1")
    assert "Subject: Your order" in shown.stdout and "It is done." in shown.stdout
    missing = _cure(env, "mail", "show", "9")
    assert missing.returncode != 0 and "no message 9" in missing.stderr
