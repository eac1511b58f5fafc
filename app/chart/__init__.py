"""Dinero chart of accounts: categories, tax codes, deposit accounts and account mappings."""
