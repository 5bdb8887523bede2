"""Log records: the REST endpoints, the saver and retention. The handler every process logs
through is plumbing any layer may use (``cure.kit.log_handler``: orders and workers too)."""
