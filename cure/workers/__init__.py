"""Celery workers: run an order's app container and report its events."""
