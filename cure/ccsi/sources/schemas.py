"""A catalogue source's document: what an operator writes to add a remote catalogue.

The document is the contract between the operator, the API (``/v1/ccsi/sources``), the CLI
(``cure ccsi sources``), the federated search and the worker's staging. Its JSON Schema is
generated from these models (``docs/sources.schema.json``) and documented in ``docs/sources.md``.

Secrets (a client secret, a refresh token, a password, S3 keys) are given either inline, then
stored encrypted and never returned (answers show ``"**********"``; a document sent back with that
marker keeps the stored secret), or as the name of an environment variable (``*_env``) that the
processes that need them read at use (the API's and the workers' environments alike).
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    HttpUrl,
    SecretStr,
    Tag,
    field_validator,
    model_validator,
)

from cure.kit.schemas import BaseSchema, InputSchema

SOURCE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,62}$"
# CURE's own collection ids; a source may map any id that matches this.
CURE_COLLECTION_PATTERN = r"^[a-z0-9][a-z0-9_.\-]{0,99}$"
ROLE_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,63}$"
ENV_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]{0,127}$"
LOCAL = "local"  # the name the local catalogue answers under; no source may take it


class NoAuth(InputSchema):
    type: Literal["none"] = "none"


class OAuth2Auth(InputSchema):
    """A bearer token from an OAuth2 token endpoint (RFC 6749): client credentials, a refresh
    token, or a user's password (the Copernicus Data Space Ecosystem's identity server gives
    tokens to its public client ``cdse-public`` for a user's password, with a refresh token).
    Fetched when first needed, kept until shortly before it expires, fetched again after a 401.
    A client secret is sent with HTTP Basic; a client without one sends its ``client_id`` in the
    form. A refresh token the server rotates is kept, in memory, for the process's life."""

    type: Literal["oauth2"]
    token_url: HttpUrl
    grant: Literal["client_credentials", "refresh_token", "password"] = "client_credentials"
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: SecretStr | None = None
    client_secret_env: str | None = Field(default=None, pattern=ENV_NAME_PATTERN)
    refresh_token: SecretStr | None = None
    refresh_token_env: str | None = Field(default=None, pattern=ENV_NAME_PATTERN)
    username: str | None = Field(default=None, min_length=1, max_length=200)
    password: SecretStr | None = None
    password_env: str | None = Field(default=None, pattern=ENV_NAME_PATTERN)
    scope: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _secrets_given_once(self) -> "OAuth2Auth":
        for secret in ("client_secret", "refresh_token", "password"):
            if getattr(self, secret) is not None and getattr(self, f"{secret}_env") is not None:
                raise ValueError(f"give {secret} or {secret}_env, not both")
        if self.grant == "client_credentials" and not (
            self.client_secret or self.client_secret_env
        ):
            raise ValueError(
                "the client_credentials grant needs client_secret or client_secret_env"
            )
        if self.grant == "refresh_token" and not (self.refresh_token or self.refresh_token_env):
            raise ValueError("the refresh_token grant needs refresh_token or refresh_token_env")
        if self.grant == "password" and not (
            self.username and (self.password or self.password_env)
        ):
            raise ValueError("the password grant needs username, and password or password_env")
        return self


class S3Auth(InputSchema):
    """Keys for the source's ``s3://`` hrefs (searches are anonymous). No keys: unsigned
    requests (public buckets). ``requester_pays``: the bucket bills the reader, whose keys must
    belong to an account that accepts the charges."""

    type: Literal["s3"]
    endpoint_url: HttpUrl | None = None
    region: str = Field(default="us-east-1", max_length=64)
    access_key_id: SecretStr | None = None
    access_key_id_env: str | None = Field(default=None, pattern=ENV_NAME_PATTERN)
    secret_access_key: SecretStr | None = None
    secret_access_key_env: str | None = Field(default=None, pattern=ENV_NAME_PATTERN)
    requester_pays: bool = False

    @model_validator(mode="after")
    def _keys_in_pairs(self) -> "S3Auth":
        for secret in ("access_key_id", "secret_access_key"):
            if getattr(self, secret) is not None and getattr(self, f"{secret}_env") is not None:
                raise ValueError(f"give {secret} or {secret}_env, not both")
        key_id = self.access_key_id is not None or self.access_key_id_env is not None
        secret_key = self.secret_access_key is not None or self.secret_access_key_env is not None
        if key_id != secret_key:
            raise ValueError("give both the access key id and the secret access key, or neither")
        if self.requester_pays and not key_id:
            raise ValueError("a requester-pays bucket needs keys (the account it bills)")
        return self


class SignedUrlAuth(InputSchema):
    """A signing service that turns an asset's href into a signed one (Microsoft's Planetary
    Computer style: ``GET {url}?href=<href>`` answers ``{"href": "<signed>"}``)."""

    type: Literal["sign"]
    url: HttpUrl


def _auth_type(value: Any) -> str | None:
    found = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return found if isinstance(found, str) else None


SourceAuth = Annotated[
    Annotated[NoAuth, Tag("none")]
    | Annotated[OAuth2Auth, Tag("oauth2")]
    | Annotated[S3Auth, Tag("s3")]
    | Annotated[SignedUrlAuth, Tag("sign")],
    Discriminator(
        _auth_type,
        custom_error_type="invalid_auth",
        custom_error_message="auth.type must be none, oauth2, s3 or sign",
    ),
]


class CollectionMapping(InputSchema):
    """How one of CURE's collections is found in the source."""

    remote: str = Field(
        min_length=1, max_length=200, description="The source's collection id (STAC) or name"
    )
    product_type: str = Field(
        min_length=1,
        max_length=100,
        description="The product type CURE's apps ask for (e.g. S2MSI2A); items are given it",
    )
    remote_product_type: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="The source's own product type when it differs from product_type (resto's "
        "SL_2_LST___ for CURE's SL_2_LST); an OpenSearch source is filtered by it",
    )
    assets: dict[Annotated[str, Field(pattern=ROLE_PATTERN)], str] = Field(
        min_length=1,
        max_length=50,
        description="CURE's asset role (red, nir, scl, lst, qa, ...) to the source's asset key",
    )
    cloud_cover_property: str | None = Field(
        default="eo:cloud_cover",
        max_length=100,
        description="The item property holding cloud cover in percent; null if it has none",
    )


class SourceDocument(InputSchema):
    """A remote catalogue, as an operator defines it."""

    name: str = Field(pattern=SOURCE_NAME_PATTERN, description="Unique; names the source")
    kind: Literal["stac", "opensearch"]
    url: HttpUrl = Field(description="The STAC API's landing page, or the OpenSearch root")
    auth: SourceAuth = Field(default_factory=NoAuth)
    priority: int = Field(
        default=100,
        ge=0,
        le=10_000,
        description="Lower wins when two sources hold the same product; the local catalogue is 0",
    )
    enabled: bool = True
    timeout_seconds: float = Field(default=10, gt=0, le=120, description="Deadline of one search")
    max_parallel: int = Field(default=4, ge=1, le=64, description="Concurrent calls to the source")
    collections: dict[Annotated[str, Field(pattern=CURE_COLLECTION_PATTERN)], CollectionMapping] = (
        Field(min_length=1, max_length=100)
    )

    @field_validator("name")
    @classmethod
    def _not_local(cls, value: str) -> str:
        if value == LOCAL:
            raise ValueError(f"{LOCAL!r} names CURE's own catalogue")
        return value


class SourceRead(BaseSchema):
    """A source as answers show it: its document with every stored secret shown as
    ``"**********"`` (never its value), its version (bumped at each change) and times."""

    name: str
    kind: Literal["stac", "opensearch"]
    url: str
    auth: dict[str, Any] = Field(
        description='The auth object; a secret that is set shows as "**********"'
    )
    priority: int
    enabled: bool
    timeout_seconds: float
    max_parallel: int
    collections: dict[str, CollectionMapping]
    version: int
    created_at: datetime
    updated_at: datetime


class SourceList(BaseSchema):
    sources: list[SourceRead]


def json_schema() -> dict[str, Any]:
    """The source document's JSON Schema: ``docs/sources.schema.json`` holds it, as
    ``cure ccsi sources schema`` prints it."""
    schema = _closed_maps(SourceDocument.model_json_schema(mode="validation"))
    schema.pop("title", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "CURE catalogue source",
        **schema,
    }


def _closed_maps(schema: Any) -> Any:
    """Maps whose keys have a pattern (collection ids, asset roles) admit no other key, as the
    model refuses them (pydantic writes only ``patternProperties``)."""
    if isinstance(schema, dict):
        found = {key: _closed_maps(value) for key, value in schema.items()}
        if "patternProperties" in found and "additionalProperties" not in found:
            found["additionalProperties"] = False
        return found
    if isinstance(schema, list):
        return [_closed_maps(value) for value in schema]
    return schema
