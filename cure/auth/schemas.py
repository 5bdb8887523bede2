from datetime import datetime

from pydantic import ConfigDict, EmailStr, Field

from cure.kit.schemas import BaseSchema, InputSchema


class TokenRead(BaseSchema):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 (a token type, not a secret)
    expires_in: int
    scope: str
    refresh_token: str | None = Field(
        default=None, description="Password and refresh grants only; each use returns a new one."
    )


class OAuthErrorRead(BaseSchema):
    error: str
    error_description: str


class LoginCreate(InputSchema):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=256)
    scope: str | None = Field(default=None, max_length=2000, description="Space-separated scopes")


class IntrospectionRead(BaseSchema):
    """RFC 7662: ``active`` and, when true, the token's claims."""

    model_config = ConfigDict(extra="allow")

    active: bool


class JwksRead(BaseSchema):
    keys: list[dict[str, str]]


class PasswordResetCreate(InputSchema):
    email: EmailStr = Field(max_length=320)


class PasswordResetRequested(BaseSchema):
    detail: str


class PasswordResetConfirm(InputSchema):
    token: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=1, max_length=256)


class PasswordChange(InputSchema):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class ClientCreate(InputSchema):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] | None = Field(
        default=None, description="At most the scopes of your token; all of them when left out."
    )


class ClientRead(BaseSchema):
    client_id: str
    name: str
    scopes: list[str] | None = Field(
        description="null: the client follows your account's scopes as they change"
    )
    created_at: datetime
    secret_rotated_at: datetime | None


class ClientSecretRead(ClientRead):
    client_secret: str = Field(description="Shown once; store it now. Only its hash is kept.")
