"""How the gateway's log events are written: readable text lines by default, JSON lines on request.

``twist`` picks JSON whenever stdout is not a terminal (systemd, a pipe) and
its JSON carries ``"unpersistable"`` markers for every object field. Here the
format is chosen by the operator (``--log-format``, ``--log-json`` or
``[logging] format``) and defaults to text everywhere; under journald
(``$JOURNAL_STREAM``) text lines carry no timestamp, the journal adds its own.
JSON lines are flat objects of plain values only. Pure formatters plus two
observer factories; nothing here decides what is logged. Lines written while
the log is held (``hold``/``release``: the request log lines of one reactor
pass) go out in one write.
"""

from __future__ import annotations

import json
import os
import time
from threading import get_ident
from typing import IO, Any, Callable, Mapping, Sequence

from twisted.logger import ILogObserver, formatEvent
from zope.interface import implementer

FORMATS = ("text", "json")


def twist_log_format(argv: Sequence[str]) -> str | None:
    """The ``--log-format`` given to ``twist`` itself, if any (twist does not say whether it chose)."""
    for i, arg in enumerate(argv):
        if arg == "--log-format" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--log-format="):
            return arg.split("=", 1)[1]
    return None


def choose_format(twist_format: str | None, json_flag: bool, configured: str) -> str:
    """An explicit ``twist --log-format`` wins, then ``--log-json``, then ``[logging] format``."""
    if twist_format in FORMATS:
        return twist_format
    if json_flag:
        return "json"
    return configured


def _text(event: Mapping[str, Any]) -> str:
    text = event.get("log_text")  # pre-rendered by the emitter (the request log line): no formatting again
    if not isinstance(text, str):
        text = formatEvent(dict(event)) or ""
    failure = event.get("log_failure")
    if failure is not None:
        try:
            text += "\n" + failure.getTraceback()
        except Exception:
            text += f"\n(traceback unavailable: {failure!r})"
    return text


def _level(event: Mapping[str, Any]) -> str:
    level = event.get("log_level")
    return getattr(level, "name", "info")


def text_line(event: Mapping[str, Any], timestamps: bool = True) -> str:
    """``2026-11-28T05:30:00Z info  [namespace] message``; continuation lines indented."""
    text = _text(event).replace("\n", "\n\t")
    head = f"{_level(event):<5} [{event.get('log_namespace', '-')}] "
    if timestamps:
        when = event.get("log_time") or time.time()
        head = _second(int(when // 1)) + f".{int(when % 1 * 1000):03d}Z " + head
    return head + text + "\n"


_last_second: tuple[int, str] = (-1, "")


def _second(second: int) -> str:
    """``2026-11-28T05:30:00`` for a whole epoch second; the last one is kept (lines come many a second)."""
    global _last_second
    if _last_second[0] != second:
        _last_second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return _last_second[1]


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


_PLAIN_TYPES = frozenset((str, int, float, bool, type(None)))  # most fields: ``_plain`` without its isinstance chain
_NOT_FIELDS = frozenset(("format", "line"))
_JSON = json.JSONEncoder(separators=(",", ":"), default=str)


def json_line(event: Mapping[str, Any]) -> str:
    """One flat JSON object: ``log_time``, ``log_level``, ``log_namespace`` (Twisted's names), ``message``, and the event's plain fields (no "unpersistable" markers)."""
    out: dict[str, Any] = {
        "log_time": event.get("log_time"),
        "log_level": _level(event),
        "log_namespace": event.get("log_namespace"),
        "message": _text(event),
    }
    for key, value in event.items():
        if key.startswith("log_") or key in out or key in _NOT_FIELDS:
            continue
        if type(value) in _PLAIN_TYPES or _plain(value):
            out[key] = value
    return _JSON.encode(out) + "\n"


@implementer(ILogObserver)
class LineObserver:
    """``FileLogObserver``: each event rendered to a line and written and flushed, unless the log is held."""

    def __init__(self, out: IO[str], render: Callable[[Mapping[str, Any]], str]) -> None:
        self.out = out
        self.render = render

    def __call__(self, event: Mapping[str, Any]) -> None:
        text = self.render(event)
        if text:
            if _held is not None and get_ident() == _holder:  # other threads' lines are written at once
                _held.append((self.out, text))
            else:
                self.out.write(text)
                self.out.flush()


_held: list[tuple[IO[str], str]] | None = None
_holder = 0  # the thread holding the log (the reactor's)


def hold() -> None:
    """Keep the lines this thread writes from now on until ``release`` (one write and flush per file, not per line)."""
    global _held, _holder
    if _held is None:
        _held, _holder = [], get_ident()


def release() -> None:
    """Write what was held, in order."""
    global _held
    lines, _held = _held, None
    if not lines:
        return
    out = lines[0][0]
    if len(lines) > 1 and all(o is out for o, _ in lines):
        lines = [(out, "".join([text for _, text in lines]))]
    for out, text in lines:  # several files: still in order, one write per line
        out.write(text)
        out.flush()


def text_observer(out: IO[str]) -> ILogObserver:
    journald = bool(os.environ.get("JOURNAL_STREAM"))
    return LineObserver(out, lambda event: text_line(event, timestamps=not journald))


def json_observer(out: IO[str]) -> ILogObserver:
    return LineObserver(out, json_line)


def observer_factory(fmt: str) -> Callable[[IO[str]], ILogObserver]:
    return json_observer if fmt == "json" else text_observer
