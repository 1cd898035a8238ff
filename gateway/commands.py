"""The command a person should type to manage accounts, as it works on this machine.

Messages (the no-account 503, ``accounts list``, the start-up summary) name a
command; this module picks the one that works as printed: the bare console
script when it is on ``PATH``, ``./scripts/accounts`` from a checkout, else the
console script's full path. Pure choice plus one small probe of the machine.
"""

from __future__ import annotations

import os
import shutil
import sys
from functools import lru_cache
from pathlib import Path

CONSOLE_SCRIPT = "antigravity-gateway"


def choose_accounts_command(on_path: str | None, installed: str | None, checkout_script: str | None, cwd: str) -> str:
    """The accounts command to print.

    ``on_path``: what ``which antigravity-gateway`` finds; ``installed``: the
    console script of the running interpreter (if it exists);
    ``checkout_script``: ``scripts/accounts`` of the checkout this code runs
    from (if any); ``cwd``: the working directory, to print a short path.
    """
    if on_path is not None and (installed is None or os.path.realpath(on_path) == os.path.realpath(installed)):
        return f"{CONSOLE_SCRIPT} accounts"
    if checkout_script is not None:
        root = os.path.dirname(os.path.dirname(checkout_script))
        if os.path.realpath(root) == os.path.realpath(cwd):
            return "./scripts/accounts"
        return checkout_script
    if installed is not None:
        return f"{installed} accounts"
    return f"{CONSOLE_SCRIPT} accounts"


@lru_cache(maxsize=1)
def accounts_command() -> str:
    """``choose_accounts_command`` for this process (e.g. ``./scripts/accounts`` after ``./scripts/run``)."""
    installed = Path(sys.prefix) / "bin" / CONSOLE_SCRIPT
    checkout = Path(__file__).resolve().parent.parent / "scripts" / "accounts"
    return choose_accounts_command(
        shutil.which(CONSOLE_SCRIPT),
        str(installed) if installed.exists() else None,
        str(checkout) if checkout.exists() else None,
        os.getcwd(),
    )
