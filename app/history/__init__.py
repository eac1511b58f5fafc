"""Account mapping and category edits kept as history: effective when, made by whom."""
