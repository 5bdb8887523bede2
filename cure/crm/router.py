from typing import Annotated

from fastapi import APIRouter, Depends, status

from cure.config import Settings, get_settings
from cure.crm import service as crm_service
from cure.crm.schemas import CustomerCreate, CustomerRegistered
from cure.kit.db import SessionDep
from cure.kit.schemas import error_responses

router = APIRouter(prefix="/v1/crm", tags=["crm"])


@router.post(
    "/customers",
    status_code=status.HTTP_201_CREATED,
    response_model=CustomerRegistered,
    responses=error_responses(409, 422),
)
async def register_customer(
    data: CustomerCreate,
    session: SessionDep,
    settings: Annotated[Settings, Depends(get_settings)],
) -> CustomerRegistered:
    """Register a customer; the answer holds OAuth2 client credentials, the secret shown once."""
    return await crm_service.register(session, settings, data)
