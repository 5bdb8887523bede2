from cure.kit.errors import Conflict, NotFound


class OrderNotFound(NotFound):
    pass


class ResultNotReady(Conflict):
    pass
