import uuid
from datetime import datetime

from pydantic import AliasChoices, EmailStr, Field, field_validator, model_validator

from cure.crm.countries import COUNTRY_CODES
from cure.kit.schemas import BaseSchema, InputSchema


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must not be blank")
    return value.strip() if value is not None else None


def _country(value: str | None) -> str | None:
    if value is None:
        return None
    code = value.strip().upper()
    if code not in COUNTRY_CODES:
        raise ValueError("country must be an ISO 3166-1 alpha-2 code, such as AT or DE")
    return code


class CustomerCreate(InputSchema):
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr = Field(max_length=320)
    password: str = Field(min_length=1, max_length=256)
    organisation: str | None = Field(default=None, max_length=200)
    country: str | None = Field(default=None, max_length=2, description="ISO 3166-1 alpha-2")

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value.strip()

    _country_code = field_validator("country")(_country)


class CustomerRegistered(BaseSchema):
    customer_id: uuid.UUID
    name: str
    email: str
    client_id: str
    client_secret: str = Field(description="Shown once; store it now. Only its hash is kept.")
    scopes: list[str]
    email_verified: bool = Field(
        default=False,
        description="Verify it with the mailed link (POST /v1/crm/customers/me/verify); the "
        "link is mailed at registration where ordering needs it, else on request",
    )


class EmailVerify(InputSchema):
    token: str = Field(min_length=1, max_length=200, description="From the verification email")


class VerificationRequested(BaseSchema):
    detail: str


class CustomerUpdate(InputSchema):
    """The fields a customer (or an admin) may change. Email, scopes and status are not among
    them: sending those is an error, not silently ignored."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    organisation: str | None = Field(default=None, max_length=200)
    country: str | None = Field(default=None, max_length=2, description="ISO 3166-1 alpha-2")

    _name = field_validator("name")(_not_blank)
    _organisation = field_validator("organisation")(_not_blank)
    _country_code = field_validator("country")(_country)

    @model_validator(mode="after")
    def _name_not_null(self) -> "CustomerUpdate":
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be removed, only changed")
        return self


class CustomerRead(BaseSchema):
    customer_id: uuid.UUID = Field(validation_alias=AliasChoices("customer_id", "id"))
    name: str
    email: str
    organisation: str | None
    country: str | None
    scopes: list[str]
    is_admin: bool
    is_active: bool
    email_verified_at: datetime | None = None
    created_at: datetime
    updated_at: datetime

    @field_validator("scopes")
    @classmethod
    def _sorted(cls, value: list[str]) -> list[str]:
        return sorted(value)


class CustomerPage(BaseSchema):
    items: list[CustomerRead]
    total: int
    limit: int
    offset: int
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null at the end"
    )
