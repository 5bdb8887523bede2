from cure.kit.schemas import BaseSchema


class TokenRead(BaseSchema):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 (a token type, not a secret)
    expires_in: int
    scope: str


class OAuthErrorRead(BaseSchema):
    error: str
    error_description: str
