import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cure.kit.schemas import BaseSchema

APP_ID = re.compile(r"^[a-z][a-z0-9_]{1,62}$")


class AppLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    memory_mb: int | None = Field(default=None, gt=0)
    cpus: float | None = Field(default=None, gt=0)
    pids: int | None = Field(default=None, gt=0)
    timeout_seconds: int | None = Field(default=None, gt=0)


class AppResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="File under /job/outputs/ that is the order's result")
    media_type: str = "application/octet-stream"


class AppManifest(BaseModel):
    """What an operator writes in ``cure/apps/<app_id>/manifest.json``."""

    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    description: str
    version: str
    image: str
    public: bool = True
    result: AppResult
    input_collections: list[str] = Field(default_factory=list)
    limits: AppLimits = Field(default_factory=AppLimits)
    invalid_exit_code: int = Field(
        default=3, description="Exit code meaning: no usable input for this region and date"
    )
    parameters: dict[str, Any]

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not APP_ID.match(value):
            raise ValueError("app id must match ^[a-z][a-z0-9_]{1,62}$")
        return value


class AppRead(BaseSchema):
    id: str
    title: str
    description: str
    version: str
    input_collections: list[str]
    parameters: dict[str, Any] = Field(description="JSON Schema of the order's params")
