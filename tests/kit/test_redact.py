"""Secrets never reach a log: tokens, Authorization headers, presigned URL signatures, passwords."""

import pytest

from cure.kit.redact import MASK, redact


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abcdefghijkl.mnop", "abcdefghijkl"),
        ('curl -H "Authorization: Basic dXNlcjpwYXNzd29yZA=="', "dXNlcjpwYXNzd29yZA"),
        ("got token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl", "c2lnbmF0dXJl"),
        ("https://s3/b/k?X-Amz-Credential=AKIA%2F&X-Amz-Signature=deadbeef", "deadbeef"),
        ("https://s3/b/k?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Date=1", "AKIAEXAMPLE"),
        ("/v1/storage/results/x?expires=1&signature=Zm9vYmFy", "Zm9vYmFy"),
        ("login with password=hunter22 now", "hunter22"),
        ('{"client_secret": "s3cr3t-value", "name": "x"}', "s3cr3t-value"),
        ("CURE_S3_SECRET_ACCESS_KEY=wJalrXUtnFEMI", "wJalrXUtnFEMI"),
        ("amqp://guest:guestpass@127.0.0.1:5672/", "guestpass"),
    ],
)
def test_secrets_are_masked(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned and MASK in cleaned


@pytest.mark.parametrize(
    "text",
    ["CURE_PROGRESS 40 computing NDVI", "area 0.824 km2, 1 day(s)", "the token endpoint said 401"],
)
def test_ordinary_lines_are_left_alone(text: str) -> None:
    assert redact(text) == text
