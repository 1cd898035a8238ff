"""Request log lines of one reactor pass are written at once; other lines, and other threads' lines, at once."""

from __future__ import annotations

import io
import threading

from twisted.logger import LogLevel, globalLogPublisher

from gateway import logs
from gateway.metrics import Metrics
from gateway.observe import GatewayObserver, Observation
from gateway.operations import after_flush


class Out(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def event(n: int) -> dict:
    return {"log_text": f"line {n}", "log_level": LogLevel.info, "log_namespace": "t", "log_time": 0.0}


def test_held_lines_go_out_in_one_write_in_order() -> None:
    out = Out()
    observer = logs.LineObserver(out, lambda e: logs.text_line(e, timestamps=False))
    observer(event(0))
    assert len(out.writes) == 1  # not held: written at once
    logs.hold()
    try:
        for n in (1, 2, 3):
            observer(event(n))
        assert len(out.writes) == 1
    finally:
        logs.release()
    assert out.writes[1] == "info  [t] line 1\ninfo  [t] line 2\ninfo  [t] line 3\n"
    observer(event(4))
    assert out.writes[2] == "info  [t] line 4\n"


def test_another_threads_line_is_not_held() -> None:
    out = Out()
    observer = logs.LineObserver(out, logs.json_line)
    logs.hold()
    try:
        thread = threading.Thread(target=observer, args=(event(1),))
        thread.start()
        thread.join()
        assert len(out.writes) == 1
    finally:
        logs.release()


def test_a_batch_of_request_lines_is_one_write() -> None:
    from tests.unit.test_observe import Rounds

    rounds, out = Rounds(), Out()
    line_observer = logs.LineObserver(out, lambda e: logs.text_line(e, timestamps=False) if e.get("request_id") else "")
    observer = GatewayObserver(Metrics(), lambda: 0.0, after_flush=after_flush(rounds))
    globalLogPublisher.addObserver(line_observer)
    try:
        for n in range(3):
            observer.request_finished(Observation(f"rid-{n}", "POST", "generateContent", "m", "127.0.0.1", 0.0), 200)
        rounds.run_round()
        rounds.run_round()
    finally:
        globalLogPublisher.removeObserver(line_observer)
    assert len(out.writes) == 1 and [line.split(" id=")[1].split()[0] for line in out.writes[0].splitlines()] == ["rid-0", "rid-1", "rid-2"]


def test_json_lines_keep_plain_containers_and_drop_objects() -> None:
    import enum
    import json

    class Kind(enum.IntEnum):
        A = 1

    line = logs.json_line({"log_text": "t", "log_level": LogLevel.info, "log_namespace": "n", "log_time": 1.0,
                           "tags": ["a", 1, {"b": None}], "kind": Kind.A, "mixed": [object()], "obj": object(),
                           "format": "f", "line": 3, "message": "not this one"})
    assert json.loads(line) == {"log_time": 1.0, "log_level": "info", "log_namespace": "n", "message": "t",
                                "tags": ["a", 1, {"b": None}], "kind": 1}
