"""The storylines' demonstrations are ordered and published under a service account: a customer
that is not an admin and that nobody can log in as (it has no password and no API client)."""

import pytest

from cure.auth import repository as auth_repository
from cure.auth.scopes import ADMIN
from cure.demo.showcase import demo_account
from cure.kit.errors import CureError
from cure.kit.resources import Resources
from cure.kit.state import state_of
from tests.factories import create_admin

ORIGIN = "http://cure.test"


def _resources(app, settings) -> Resources:  # type: ignore[no-untyped-def]
    # state_of(app).db.sessionmaker joins the test's transaction (the db fixture): nothing is kept.
    return Resources(settings, state_of(app).db.engine, state_of(app).db.sessionmaker)


async def test_the_demonstrations_account_is_a_customer_nobody_logs_in_as(
    app, client, session, settings
) -> None:
    account = await demo_account(_resources(app, settings), {"suhi"})
    customer = await auth_repository.get_customer(session, account.customer_id)
    assert customer is not None and customer.email == settings.portal_demo_email
    assert settings.portal_demo_email.endswith(".invalid")  # an address no mail reaches
    assert not customer.is_admin and not account.is_admin
    assert ADMIN not in customer.scopes and ADMIN not in account.scopes
    assert customer.email_verified_at is None
    assert "app:suhi" in account.scopes and "orders:write" in account.scopes
    assert await auth_repository.list_customer_clients(session, customer.id) == []
    for password in ("a long passphrase", customer.password_hash):
        login = await client.post(
            "/v1/portal/session",
            json={"email": customer.email, "password": password},
            headers={"Origin": ORIGIN},
        )
        assert login.status_code == 400, login.text
    again = await demo_account(_resources(app, settings), {"urban_green"})
    assert again.customer_id == account.customer_id


async def test_an_admin_is_refused_as_the_demonstrations_account(
    app, client, session, settings
) -> None:
    admin, _ = await create_admin(client, session)
    resources = _resources(app, settings.model_copy(update={"portal_demo_email": admin["email"]}))
    with pytest.raises(CureError, match="must not be an admin"):
        await demo_account(resources, {"suhi"})
