"""Telling customers an order ended: email and signed callbacks, sent from an outbox with retries."""
