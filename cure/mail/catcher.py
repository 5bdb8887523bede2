"""A local mailbox: an SMTP server (aiosmtpd) that keeps every message it receives as a file
under ``mail_dir`` (``000001.eml``, ...), and reading them back. For a single machine with no
mail server: password resets and order emails land here instead of failing."""

import email
import email.policy
import os
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

_LOCK = threading.Lock()


@dataclass(frozen=True)
class StoredMail:
    number: int
    path: Path
    message: EmailMessage

    @property
    def summary(self) -> str:
        m = self.message
        return f"{self.number:>4}  {m['Date'] or '':<31}  {m['To'] or '':<32}  {m['Subject'] or ''}"


def _next_path(folder: Path) -> Path:
    """A new file for the next message; O_EXCL, so two catchers never write the same one."""
    folder.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.stem) for p in folder.glob("*.eml") if p.stem.isdigit()]
    number = max(numbers, default=0) + 1
    while True:
        path = folder / f"{number:06d}.eml"
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            return path
        except FileExistsError:
            number += 1


class MailboxHandler:
    """aiosmtpd's handler: stores each message, with the envelope's recipients."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode()
        with _LOCK:
            path = _next_path(self.folder)
        recipients = ", ".join(envelope.rcpt_tos)
        path.write_bytes(f"X-Envelope-To: {recipients}\r\n".encode() + content)
        return "250 Message accepted for delivery"


def serve(folder: Path, *, host: str, port: int) -> Any:
    """Start the SMTP server in a thread; returns the controller (``.stop()`` ends it)."""
    from aiosmtpd.controller import Controller

    controller = Controller(MailboxHandler(folder), hostname=host, port=port)
    controller.start()
    return controller


def stored(folder: Path) -> list[StoredMail]:
    """Every stored message, oldest first."""
    if not folder.is_dir():
        return []
    mails = []
    for path in sorted(folder.glob("*.eml")):
        if not path.stem.isdigit() or path.stat().st_size == 0:
            continue
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        mails.append(StoredMail(int(path.stem), path, message))  # type: ignore[arg-type]
    return mails


def render(mail: StoredMail) -> str:
    """A message as a person reads it: the main headers, then the text body."""
    m = mail.message
    lines = [f"{name}: {m[name]}" for name in ("Date", "From", "To", "Subject") if m[name]]
    body = m.get_body(preferencelist=("plain", "html"))
    text = body.get_content() if body is not None else m.get_payload()
    return "\n".join(lines) + "\n\n" + str(text)
