"""Following exported drafts in Dinero: approvals (Godkend), deletions, edits, late receipts."""
