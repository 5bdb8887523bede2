import uuid

from pydantic import EmailStr, Field, field_validator

from cure.kit.schemas import BaseSchema, InputSchema


class CustomerCreate(InputSchema):
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    password: str = Field(min_length=10, max_length=256)
    organisation: str | None = Field(default=None, max_length=200)

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value.strip()


class CustomerRegistered(BaseSchema):
    customer_id: uuid.UUID
    name: str
    email: str
    client_id: str
    client_secret: str = Field(description="Shown once; store it now. Only its hash is kept.")
    scopes: list[str]
