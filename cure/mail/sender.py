"""Send one plain-text email over SMTP; smtplib runs in a worker thread, never on the event loop."""

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

from cure.config import NotificationSettings
from cure.mail.exceptions import MailError


def build_message(
    settings: NotificationSettings, *, to: str, subject: str, body: str
) -> EmailMessage:
    message = EmailMessage()
    # EmailMessage refuses CR/LF in header values, so no header can be injected through them.
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="cure")
    message.set_content(body)
    return message


def _deliver(settings: NotificationSettings, message: EmailMessage) -> None:
    with smtplib.SMTP(
        settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds
    ) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_user:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            smtp.login(settings.smtp_user, password)
        smtp.send_message(message)


async def send_email(settings: NotificationSettings, *, to: str, subject: str, body: str) -> None:
    """Hand one email to the configured SMTP server, or raise MailError."""
    try:
        message = build_message(settings, to=to, subject=subject, body=body)
    except ValueError as exc:
        raise MailError(f"the email could not be built: {exc}") from exc
    try:
        await asyncio.to_thread(_deliver, settings, message)
    except (smtplib.SMTPException, OSError) as exc:
        # Only the failure's kind and the server's reply: never the body, which may hold a secret.
        raise MailError(
            f"SMTP delivery to {settings.smtp_host}:{settings.smtp_port} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
