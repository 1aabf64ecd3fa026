"""Customers (SailPlay users, eSputnik contacts) and their tags."""
