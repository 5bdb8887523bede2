from cure.kit.errors import Conflict, InvalidInput


class EmailTaken(Conflict):
    pass


class WeakPassword(InvalidInput):
    pass
