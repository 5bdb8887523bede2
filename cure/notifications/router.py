from typing import Annotated

from fastapi import APIRouter, Depends

from cure.auth.dependencies import require_scope
from cure.auth.principals import Principal
from cure.auth.scopes import ORDERS_READ
from cure.kit.dependencies import SettingsDep
from cure.kit.schemas import error_responses
from cure.notifications import signing
from cure.notifications.schemas import CallbackSecretRead

router = APIRouter(prefix="/v1/callbacks", tags=["callbacks"])


@router.get("/secret", response_model=CallbackSecretRead, responses=error_responses(401, 403))
async def callback_secret(
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require_scope(ORDERS_READ))],
) -> CallbackSecretRead:
    """The key that signs the callbacks of your orders, and how to check a signature."""
    return CallbackSecretRead(secret=signing.customer_secret(settings, principal.customer_id))
