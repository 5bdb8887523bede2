"""The SMTP sender against a real SMTP server (aiosmtpd on 127.0.0.1)."""

import pytest

from cure.mail.exceptions import MailError
from cure.mail.sender import send_email
from tests.conftest import free_port
from tests.factories import unique_email


async def test_send_email_delivers_over_smtp(settings, mailbox) -> None:
    to = unique_email()
    await send_email(settings, to=to, subject="Order finished", body="Your result is ready.\n")
    message = await mailbox.wait_for(to)
    assert message["Subject"] == "Order finished"
    assert message["From"] == settings.smtp_from
    assert message["Message-ID"]
    assert message.get_content().strip() == "Your result is ready."


async def test_unreachable_server_raises_mail_error_without_the_body(settings) -> None:
    closed = settings.model_copy(update={"smtp_port": free_port()})
    with pytest.raises(MailError) as failure:
        await send_email(closed, to=unique_email(), subject="s", body="secret-token-123")
    assert "secret-token-123" not in str(failure.value)


async def test_header_injection_is_refused(settings, mailbox) -> None:
    to = unique_email()
    with pytest.raises(MailError):
        await send_email(settings, to=to, subject="hi\r\nBcc: victim@example.org", body="x")
    assert mailbox.to(to) == []
