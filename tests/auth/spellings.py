"""Other spellings of one JWT: texts that lenient base64url decoders read as the same bytes."""

import string

import httpx

ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
SEGMENTS = ("header", "payload", "signature")


def _spare_bits(segment: str) -> int:
    """How many low bits of the last character carry no data (0, 2 or 4)."""
    return {0: 0, 2: 4, 3: 2}[len(segment) % 4]


def _segment_spellings(segment: str) -> dict[str, str]:
    found = {}
    last = ALPHABET.index(segment[-1])
    for flip in range(1, 2 ** _spare_bits(segment)):
        found[f"spare bits {flip:#x}"] = segment[:-1] + ALPHABET[last ^ flip]
    if padding := "=" * (-len(segment) % 4):
        found["padded"] = segment + padding
    found["a stray character"] = segment[:4] + "!" + segment[4:]
    found["a stray space"] = segment[:4] + " " + segment[4:]
    for ours, standard in (("-", "+"), ("_", "/")):
        if ours in segment:
            found[f"{standard} for {ours}"] = segment.replace(ours, standard, 1)
    return found


def other_spellings(token: str) -> dict[str, str]:
    """Each other spelling of ``token``, by what was changed in which segment."""
    segments = token.split(".")
    spellings = {}
    for index, name in enumerate(SEGMENTS):
        for change, spelled in _segment_spellings(segments[index]).items():
            changed = [*segments[:index], spelled, *segments[index + 1 :]]
            spellings[f"{name}: {change}"] = ".".join(changed)
    return spellings


async def spellings_answered(http: httpx.AsyncClient, token: str, path: str) -> dict[str, int]:
    """The other spellings of ``token`` that a GET of ``path`` does not answer 401, and how."""
    answers = {}
    for name, spelled in other_spellings(token).items():
        headers = {"Authorization": f"Bearer {spelled}"}
        answers[name] = (await http.get(path, headers=headers)).status_code
    return {name: status for name, status in answers.items() if status != 401}
