"""Which changed settings a SIGHUP reload cannot apply (they are logged as needing a restart)."""

from __future__ import annotations

from gateway.config import Settings, override
from gateway.reload import changed_restart_only


def test_a_changed_log_format_needs_a_restart_although_logging_reloads() -> None:
    old = Settings()
    assert changed_restart_only(old, override(old, "logging", format="json")) == ["logging.format"]
    assert changed_restart_only(old, override(old, "logging", account_label="hash")) == []


def test_a_changed_upstream_key_needs_a_restart() -> None:
    old = Settings()
    assert changed_restart_only(old, override(old, "upstream", body_timeout=5.0)) == ["upstream.body_timeout"]
