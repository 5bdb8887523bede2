"""Status manager: consumes order events and applies them to the order rows."""
