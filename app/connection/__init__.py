"""Connecting a company to its Dinero organization (OAuth approval or API key)."""
