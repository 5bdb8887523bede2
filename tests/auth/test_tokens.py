"""Forged and foreign access tokens are refused, with HS256 and with RS256 keys."""

import base64
import hashlib
import hmac
import json
import time

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt

from tests.auth.spellings import other_spellings, spellings_answered
from tests.conftest import loopback_address
from tests.factories import create_customer, get_token

ME = "/v1/crm/customers/me"
HEADER = {"typ": "at+jwt"}


def _b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _hmac_token(header: dict, claims: dict, secret: bytes, digest=hashlib.sha256) -> str:
    """An HMAC-signed JWT made by hand, so any key (even a public PEM) can be the secret."""
    signing_input = f"{_b64(header)}.{_b64(claims)}"
    signature = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


def _rsa_pem(bits: int = 2048) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


async def _status(http: httpx.AsyncClient, token: str) -> int:
    return (await http.get(ME, headers={"Authorization": f"Bearer {token}"})).status_code


def _without(claims: dict, name: str) -> dict:
    return {k: v for k, v in claims.items() if k != name}


async def test_forged_hs256_tokens_are_refused(client, settings) -> None:
    customer = await create_customer(client)
    token = await get_token(client, customer)
    claims = jwt.get_unverified_claims(token)
    secret = settings.jwt_secret.get_secret_value()
    now = int(time.time())
    attacker_private, _ = _rsa_pem()

    def sign(payload: dict, key: str = secret, alg: str = "HS256", headers=HEADER) -> str:
        return jwt.encode(payload, key, algorithm=alg, headers=headers)

    # The forging helpers make tokens the server accepts when nothing is wrong with them.
    assert await _status(client, sign(claims)) == 200
    assert (
        await _status(client, _hmac_token({"alg": "HS256", **HEADER}, claims, secret.encode()))
        == 200
    )

    forged = {
        "alg none": f"{_b64({'alg': 'none', **HEADER})}.{_b64(claims)}.",
        "alg None": f"{_b64({'alg': 'None', **HEADER})}.{_b64(claims)}.",
        "alg none with signature": f"{_b64({'alg': 'none', **HEADER})}.{_b64(claims)}."
        + token.split(".")[2],
        "wrong key": sign(claims, "another-secret-" + "y" * 40),
        "other HMAC algorithm": sign(claims, alg="HS512"),
        "RS256 with an attacker's key": sign(claims, attacker_private, "RS256"),
        "expired": sign({**claims, "iat": now - 7200, "exp": now - 3600}),
        "wrong audience": sign({**claims, "aud": "other"}),
        "wrong issuer": sign({**claims, "iss": "other"}),
        "not an access token (typ JWT)": sign(claims, headers={"typ": "JWT"}),
        "no typ": _hmac_token({"alg": "HS256"}, claims, secret.encode()),
        "subject not a customer id": sign({**claims, "sub": "admin"}),
        "another customer's id": sign({**claims, "sub": "00000000-0000-0000-0000-000000000001"}),
        "scope not a string": sign({**claims, "scope": ["admin"]}),
        "exp not a number": sign({**claims, "exp": "tomorrow"}),
        "tampered payload": ".".join(
            [
                token.split(".")[0],
                _b64({**claims, "scope": "admin orders:read"}),
                token.split(".")[2],
            ]
        ),
        "tampered header": ".".join(
            [_b64({"alg": "HS512", **HEADER}), token.split(".")[1], token.split(".")[2]]
        ),
        "truncated": token[:-5],
    }
    for claim in ("sub", "client_id", "scope", "exp", "iat", "jti", "iss", "aud"):
        forged[f"without {claim}"] = sign(_without(claims, claim))
    for name, bad in forged.items():
        assert await _status(client, bad) == 401, name


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[str, str]:
    return _rsa_pem()


@pytest.fixture
async def rs_client(settings, rsa_keys):  # type: ignore[no-untyped-def]
    """The API configured for RS256 (an app of its own, sharing the database)."""
    from tests.conftest import started_app

    rs_settings = settings.model_copy(
        update={"jwt_algorithm": "RS256", "jwt_private_key": _secret(rsa_keys[0])}
    )
    async with started_app(rs_settings) as app:
        transport = httpx.ASGITransport(app=app, client=(loopback_address(), 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http:
            yield http


def _secret(value: str):  # type: ignore[no-untyped-def]
    from pydantic import SecretStr

    return SecretStr(value)


async def test_rs256_tokens_verify_with_the_published_key(rs_client, rsa_keys) -> None:
    from joserfc import jwt as joserfc_jwt
    from joserfc.jwk import KeySet

    customer = await create_customer(rs_client)
    token = await get_token(rs_client, customer)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    jwks = (await rs_client.get("/v1/auth/jwks.json")).json()
    assert len(jwks["keys"]) == 1
    key = jwks["keys"][0]
    assert {key["kty"], key["alg"], key["use"], key["kid"]} == {
        "RSA",
        "RS256",
        "sig",
        header["kid"],
    }
    assert "d" not in key and "p" not in key  # public parts only
    # Another library verifies the token with nothing but the published key set.
    verified = joserfc_jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256"])
    assert verified.claims["sub"] == customer["customer_id"]
    assert await _status(rs_client, token) == 200


async def test_forged_rs256_tokens_are_refused(rs_client, rsa_keys) -> None:
    private, public = rsa_keys
    customer = await create_customer(rs_client)
    token = await get_token(rs_client, customer)
    claims = jwt.get_unverified_claims(token)
    kid = jwt.get_unverified_header(token)["kid"]
    attacker_private, _ = _rsa_pem()

    def sign(payload: dict, key: str = private, alg: str = "RS256", headers=None) -> str:
        return jwt.encode(payload, key, algorithm=alg, headers=headers or {**HEADER, "kid": kid})

    assert await _status(rs_client, sign(claims)) == 200  # the helper itself makes good tokens
    forged = {
        # HS/RS confusion: the public key, which anyone can fetch, used as an HMAC secret.
        "HS256 keyed with the public PEM": _hmac_token(
            {"alg": "HS256", **HEADER, "kid": kid}, claims, public.encode()
        ),
        "HS256 keyed with the public PEM, no newline": _hmac_token(
            {"alg": "HS256", **HEADER}, claims, public.strip().encode()
        ),
        "HS256 keyed with the server's HS secret": _hmac_token(
            {"alg": "HS256", **HEADER}, claims, b"test-secret-" + b"x" * 40
        ),
        "alg none": f"{_b64({'alg': 'none', **HEADER})}.{_b64(claims)}.",
        "attacker's RSA key, same kid": sign(claims, attacker_private),
        "attacker's RSA key, own kid": sign(
            claims, attacker_private, headers={**HEADER, "kid": "attacker"}
        ),
        "RS512 with the right key": sign(claims, alg="RS512"),
        "expired": sign({**claims, "iat": int(time.time()) - 7200, "exp": int(time.time()) - 60}),
        "wrong audience": sign({**claims, "aud": "someone-else"}),
        "wrong issuer": sign({**claims, "iss": "someone-else"}),
        "tampered payload": ".".join(
            [token.split(".")[0], _b64({**claims, "scope": "admin"}), token.split(".")[2]]
        ),
    }
    for name, bad in forged.items():
        assert await _status(rs_client, bad) == 401, name


async def test_other_spellings_of_an_rs256_token_are_refused(rs_client) -> None:
    customer = await create_customer(rs_client)
    token = await get_token(rs_client, customer)
    assert await _status(rs_client, token) == 200
    # 256 signature bytes: the last of 342 characters carries 2 bits, so 15 other spellings.
    spare = [name for name in other_spellings(token) if name.startswith("signature: spare bits")]
    assert len(spare) == 15
    assert await spellings_answered(rs_client, token, ME) == {}


async def test_deeply_nested_json_in_a_token_is_refused(client, settings) -> None:
    """JSON nested deeper than the parser's recursion limit is an invalid token, not a 500."""
    secret = settings.jwt_secret.get_secret_value().encode()
    nested = ("[" * 3000 + "]" * 3000).encode()
    header = {"alg": "HS256", **HEADER}
    signing_input = f"{_b64(header)}.{_b64(nested)}"
    signed = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    for name, bad in {
        "header": f"{_b64(nested)}.{_b64({'sub': 'x'})}.{_b64(b'x' * 32)}",
        "claims, signed": f"{signing_input}.{_b64(signed)}",
    }.items():
        assert await _status(client, bad) == 401, name


async def test_hs256_tokens_are_refused_by_an_rs256_server_and_back(
    committing_client, rs_client
) -> None:
    client = committing_client  # the RS256 app has its own engine: it must see the customer
    customer = await create_customer(client)
    hs_token = await get_token(client, customer)
    rs_token = await get_token(rs_client, customer)
    assert await _status(rs_client, hs_token) == 401
    assert await _status(client, rs_token) == 401


async def test_hs256_publishes_no_key(client) -> None:
    response = await client.get("/v1/auth/jwks.json")
    assert response.status_code == 200
    assert response.json() == {"keys": []}


def test_rs_settings_need_a_strong_rsa_key(settings) -> None:
    from cure.auth.tokens import key_material
    from cure.config import Settings

    with pytest.raises(ValueError, match="CURE_JWT_PRIVATE_KEY"):
        Settings(jwt_algorithm="RS256")
    weak, _ = _rsa_pem(1024)
    with pytest.raises(ValueError, match="2048"):
        key_material(Settings(jwt_algorithm="RS256", jwt_private_key=_secret(weak)))
    with pytest.raises(ValueError, match="PEM"):
        key_material(Settings(jwt_algorithm="RS256", jwt_private_key=_secret("not a key")))
