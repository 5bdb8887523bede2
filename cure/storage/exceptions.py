from cure.kit.errors import Forbidden


class LinkInvalid(Forbidden):
    pass
