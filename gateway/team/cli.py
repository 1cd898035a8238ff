"""``antigravity-gateway keys …`` and ``antigravity-gateway usage``: the team store from the shell.

Works on the same SQLite file the gateway uses (``[team] store``); a running
gateway picks key changes up within ``[team] keys_poll_seconds``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from gateway.team import operations
from gateway.team.keys import KeyProblem, KeyRecord, key_view
from gateway.team.sqlite_store import StoreProblem
from gateway.team.usage import GROUPS, parse_since, render_table


def _store(settings: Any) -> Any:
    from gateway.team.service import open_store

    return open_store(settings)


def _failed(e: Exception) -> Exception:
    from gateway.cli import CommandFailed

    return CommandFailed(str(e))


def limits_text(record: KeyRecord) -> str:
    parts = [f"rpm {record.rpm or '-'}", f"tokens/day {record.tokens_per_day or '-'}",
             "models " + (",".join(record.models) if record.models else "*")]
    return ", ".join(parts)


def render_keys(records: list[KeyRecord], now: float) -> str:
    if not records:
        return "no keys yet (add one: antigravity-gateway keys add NAME)"
    rows = [(v["name"], v["state"], v["expires"] or "never", limits_text(r), v["note"]) for r in records for v in [key_view(r, now)]]
    headers = ("name", "state", "expires", "limits", "note")
    widths = [max(len(h), *(len(str(row[i])) for row in rows)) for i, h in enumerate(headers)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in [headers, *rows])


def cmd_keys_add(args: argparse.Namespace, settings: Any, _: Any, now: float) -> int:
    try:
        secret, record = operations.create(_store(settings), args.name, now, expires=args.expires, ttl_days=args.ttl, rpm=args.rpm,
                                           tokens_per_day=args.tokens_per_day, models=args.models or (), note=args.note or "")
    except (KeyProblem, StoreProblem) as e:
        raise _failed(e) from None
    print(f"added key {record.name} ({limits_text(record)}). The key, shown this once only:\n\n  {secret}\n")
    return 0


def cmd_keys_list(args: argparse.Namespace, settings: Any, _: Any, now: float) -> int:
    try:
        records = _store(settings).keys()
    except StoreProblem as e:
        raise _failed(e) from None
    print(json.dumps([key_view(r, now) for r in records], indent=2) if args.json else render_keys(records, now))
    return 0


def cmd_keys_show(args: argparse.Namespace, settings: Any, _: Any, now: float) -> int:
    try:
        record = operations.find_key(_store(settings), args.name)
    except (KeyProblem, StoreProblem) as e:
        raise _failed(e) from None
    view = key_view(record, now)
    if args.json:
        print(json.dumps(view, indent=2))
    else:
        print("\n".join(f"{k}: {', '.join(v) if isinstance(v, list) else v}" for k, v in view.items()))
    return 0


def cmd_keys_revoke(args: argparse.Namespace, settings: Any, _: Any, now: float) -> int:
    try:
        record = operations.revoke(_store(settings), args.name, now)
    except (KeyProblem, StoreProblem) as e:
        raise _failed(e) from None
    print(f"revoked {record.name}")
    return 0


def cmd_keys_edit(args: argparse.Namespace, settings: Any, _: Any, now: float) -> int:
    try:
        record = operations.edit(_store(settings), args.name, now, rpm=args.rpm, tokens_per_day=args.tokens_per_day,
                                 models=args.models, note=args.note, expires=args.expires, ttl_days=args.ttl)
    except (KeyProblem, StoreProblem) as e:
        raise _failed(e) from None
    print(f"changed {record.name}: {limits_text(record)}, expires {key_view(record, now)['expires'] or 'never'}")
    return 0


def cmd_usage(args: argparse.Namespace, settings: Any, _: Any, now: float) -> int:
    try:
        since = parse_since(args.since, now)
        rows = _store(settings).summary(since, args.by)
    except (ValueError, StoreProblem) as e:
        raise _failed(e) from None
    print(json.dumps({"since": since, "by": args.by, "rows": rows}, indent=2) if args.json else render_table(rows, args.by))
    return 0


def _limits(p: argparse.ArgumentParser) -> None:
    when = p.add_mutually_exclusive_group()
    when.add_argument("--expires", metavar="DATE", help="YYYY-MM-DD (end of that UTC day) or an ISO time; 'never' clears it")
    when.add_argument("--ttl", type=float, metavar="DAYS", help="expires this many days from now")
    p.add_argument("--rpm", type=int, help="requests per minute (0: no limit)")
    p.add_argument("--tokens-per-day", type=int, metavar="N", help="tokens per UTC day, from upstream usage (0: no limit)")
    p.add_argument("--models", nargs="+", metavar="PATTERN", help="allowed models after resolution (gemini-*, claude-sonnet-4-6 …)")
    p.add_argument("--note", metavar="TEXT", help="free text shown in lists")


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    keys = commands.add_parser("keys", help="per-person client keys: add, list, show, revoke, edit")
    keys.set_defaults(help_for=keys)
    actions = keys.add_subparsers(dest="action", metavar="ACTION")
    add = actions.add_parser("add", parents=[common], help="a new key for NAME (printed once)")
    add.add_argument("name")
    _limits(add)
    add.set_defaults(run=cmd_keys_add)
    lst = actions.add_parser("list", parents=[common], help="every key (never the key itself)")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(run=cmd_keys_list)
    show = actions.add_parser("show", parents=[common], help="one key's limits and state")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=cmd_keys_show)
    revoke = actions.add_parser("revoke", parents=[common], help="stop a key (a running gateway refuses it within seconds)")
    revoke.add_argument("name")
    revoke.set_defaults(run=cmd_keys_revoke)
    edit = actions.add_parser("edit", parents=[common], help="change a key's limits, models, expiry or note")
    edit.add_argument("name")
    _limits(edit)
    edit.set_defaults(run=cmd_keys_edit)

    usage = commands.add_parser("usage", parents=[common], help="requests and tokens recorded, grouped by key, account, model or day")
    usage.add_argument("--since", help="7d, 24h, 30m or a date (default: the last 30 days)")
    usage.add_argument("--by", choices=GROUPS, default="key")
    usage.add_argument("--json", action="store_true")
    usage.set_defaults(run=cmd_usage)
