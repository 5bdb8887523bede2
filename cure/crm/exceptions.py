from cure.auth.exceptions import WeakPassword
from cure.kit.errors import Conflict, InvalidInput, NotFound


class EmailTaken(Conflict):
    pass


class CustomerNotFound(NotFound):
    pass


class UnknownScope(InvalidInput):
    pass


class ScopeNotGrantable(InvalidInput):
    pass


class CannotChangeSelf(Conflict):
    pass


__all__ = [
    "CannotChangeSelf",
    "CustomerNotFound",
    "EmailTaken",
    "ScopeNotGrantable",
    "UnknownScope",
    "WeakPassword",
]
