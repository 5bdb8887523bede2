"""Orders: submit, status, results."""
