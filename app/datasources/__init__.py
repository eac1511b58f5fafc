"""Data sources: named imports of Dinero data by type (dashboards, reconciliation)."""
