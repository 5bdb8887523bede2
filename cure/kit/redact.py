"""Redact secrets from free text before it is logged or shown: bearer tokens and Authorization
headers, JWTs, presigned URL signatures and credentials, passwords, secrets and keys in
``name=value`` or JSON form, and the password of a URL's user info."""

import re

MASK = "[REDACTED]"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Authorization: Bearer xyz / Basic xyz (header lines, curl -H, dumped requests)
    (
        re.compile(r"(?i)\b(authorization|proxy-authorization)(\s*[:=]\s*\"?)[^\"\r\n,}]+"),
        rf"\1\2{MASK}",
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {MASK}"),
    # JWTs anywhere: three base64url parts, the first two starting with '{"' encoded
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), MASK),
    # Presigned URLs (S3 SigV4 and V2, Azure SAS, our own local links) and token parameters
    (
        re.compile(
            r"(?i)([?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|signature|sig"
            r"|awsaccesskeyid|access_token|token|api_key|apikey|key|password|secret)=)[^&\s\"']+"
        ),
        rf"\1{MASK}",
    ),
    # password=..., "client_secret": "...", secret_access_key: ... (name ends in a secret word)
    (
        re.compile(
            r"(?i)([\"']?[\w.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key"
            r"|private[_-]?key|credential)s?[\"']?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&}]+)"
        ),
        rf"\1{MASK}",
    ),
    # scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@"), rf"\1{MASK}@"),
]


def redact(text: str) -> str:
    """``text`` with every secret it visibly carries replaced by ``[REDACTED]``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
