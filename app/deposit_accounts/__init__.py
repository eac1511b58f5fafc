"""Deposit accounts ("Beholdninger") created in Dinero from the setup step."""
