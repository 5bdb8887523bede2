"""Customers: registration and profile."""
