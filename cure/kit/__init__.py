"""Shared plumbing: database session, base schemas, errors."""
