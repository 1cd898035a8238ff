"""State that several gateway instances must agree on (local by default, or Redis)."""
