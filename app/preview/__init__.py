"""The export preview, the live pre-flight, and why each exported line went where it did."""
