"""The export engine: items in, vouchers and ledger items in Dinero, exactly once."""
