from cure.kit.errors import InvalidInput, ServiceUnavailable


class LogsUnavailable(ServiceUnavailable):
    pass


class LogRecordRefused(InvalidInput):
    pass


class LogBodyTooLarge(InvalidInput):
    status_code = 413
