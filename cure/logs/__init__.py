"""Log records: the handler every process logs through, the REST endpoints, the saver and
retention. Importing the package imports nothing: workers take only ``cure.logs.handler``."""
