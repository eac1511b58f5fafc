"""Reversing an exported item in Dinero (and exporting it again, corrected)."""
