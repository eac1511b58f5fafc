"""Companies: the expense platform's customers, created on first sight of their id."""
