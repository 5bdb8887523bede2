from pydantic import Field

from cure.kit.schemas import BaseSchema


class CallbackSecretRead(BaseSchema):
    secret: str = Field(description="Key of the HMAC-SHA256 in each callback's X-Cure-Signature")
    header: str = "X-Cure-Signature"
    scheme: str = Field(
        default="t=<unix time>,v1=<hex HMAC-SHA256(secret, '<t>.' + raw body)>",
        description="Recompute v1 over the raw body and refuse old timestamps",
    )
