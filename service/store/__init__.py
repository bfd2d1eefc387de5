"""Persistence: models, sessions, migrations and the repository functions."""
