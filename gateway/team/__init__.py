"""Per-person keys with limits, usage accounting and the dashboard's data (see docs/team.md)."""
