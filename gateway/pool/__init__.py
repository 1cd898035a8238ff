"""Accounts: records, stores, and the pool that chooses one per attempt."""
