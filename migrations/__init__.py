"""Alembic environment, revisions and the column shapes they share (migrations/helpers.py)."""
