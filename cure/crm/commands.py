"""`cure admin create`: the only way to make an admin (no endpoint does)."""

import asyncio
import getpass
import sys

from pydantic import ValidationError

from cure.config import get_settings
from cure.crm import service as crm_service
from cure.crm.schemas import CustomerCreate
from cure.kit.errors import CureError
from cure.kit.resources import open_resources


def read_password() -> str:
    """From a prompt (asked twice) on a terminal, else the first line of standard input; never
    from the command line, where other users and shell history would see it."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise ValueError("the passwords differ")
        return password
    return sys.stdin.readline().rstrip("\r\n")


async def _create(data: CustomerCreate) -> str:
    async with open_resources(get_settings()) as resources:
        async with resources.sessionmaker() as session, session.begin():
            customer = await crm_service.create_admin(session, resources.settings, data)
            return f"admin {customer.email} created (customer id {customer.id})"


def create_admin(*, email: str, name: str, organisation: str | None) -> int:
    """Create an admin account; returns the process exit code."""
    try:
        password = read_password()
        data = CustomerCreate(name=name, email=email, password=password, organisation=organisation)
        print(asyncio.run(_create(data)))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"cannot create the admin: {problems}", file=sys.stderr)
        return 1
    except (CureError, ValueError) as exc:
        print(f"cannot create the admin: {exc}", file=sys.stderr)
        return 1
    return 0
