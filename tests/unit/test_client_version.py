"""The client version logic: parsing, comparing, the floor, the manifest, the User-Agent, the refusal."""

from __future__ import annotations

import json

import pytest

from gateway.protocol import client_version as cv


@pytest.mark.parametrize("text,parsed", [("2.9.1", (2, 9, 1)), ("2.9.0", (2, 9)), ("2.9", (2, 9)), ("10", (10,)), (" 3.0.1 ", (3, 0, 1))])
def test_parse(text: str, parsed: tuple[int, ...]) -> None:
    assert cv.parse(text) == parsed


@pytest.mark.parametrize("text", ["", "v2.9.1", "2.9.x", "2..9", "1.2.3.4.5", None])
def test_parse_refuses_what_is_not_a_version(text: object) -> None:
    assert cv.parse(text) is None  # type: ignore[arg-type]


def test_compare_numerically_not_as_text() -> None:
    assert cv.newer("2.10.0", "2.9.9") and not cv.newer("2.9.9", "2.10.0")
    assert not cv.newer("2.9.0", "2.9") and not cv.newer("garbage", "1.0")


def test_the_version_sent_is_the_higher_of_floor_and_fetched() -> None:
    assert cv.effective("2.9.1", None) == "2.9.1"
    assert cv.effective("2.9.1", "2.12.2") == "2.12.2"
    assert cv.effective("2.9.1", "2.8.0") == "2.9.1"
    assert cv.effective("2.9.1", "nonsense") == "2.9.1"


def test_manifest_version_is_the_top_level_key() -> None:
    manifest = b"files:\n  - url: x.zip\n    version: 9.9.9\nversion: 2.12.2\npath: x.zip\nreleaseDate: '2026-08-01'\n"
    assert cv.from_manifest(manifest) == "2.12.2"
    assert cv.from_manifest("version: '3.0.1'  # quoted\n") == "3.0.1"
    assert cv.from_manifest('version: "3.0.2"\r\n') == "3.0.2"
    assert cv.from_manifest(b"<html>not found</html>") is None
    assert cv.from_manifest(b"version: latest\n") is None


def test_user_agent_template() -> None:
    assert cv.user_agent("antigravity/hub/{version} darwin/arm64", "2.9.1") == "antigravity/hub/2.9.1 darwin/arm64"
    assert cv.user_agent("antigravity/1.11.9 linux/amd64", "2.9.1") == "antigravity/1.11.9 linux/amd64"


@pytest.mark.parametrize("status,body", [
    (503, {"error": {"code": 503, "message": "This version of Antigravity is no longer supported. Please upgrade to receive the latest features.", "status": "UNAVAILABLE"}}),
    (404, {"error": {"code": 404, "message": "This version of Antigravity is no longer supported. Please update to receive the latest features!"}}),
    (200, "data: " + json.dumps({"error": {"code": 503, "message": "This version of Antigravity is no longer supported."}})),
    (503, "<html>This version of Antigravity is no longer supported</html>"),
])
def test_the_refusal_is_recognised_by_its_common_beginning(status: int, body: object) -> None:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    assert cv.is_rejection(status, raw)


@pytest.mark.parametrize("status,body", [
    (503, {"error": {"code": 503, "message": "No capacity available for model gemini-3-flash on the server"}}),
    (404, {"error": {"code": 404, "message": "Requested entity was not found."}}),
    (400, {"error": {"code": 400, "message": "bad", "details": [{"note": "this version of antigravity is no longer supported"}]}}),
])
def test_capacity_and_plain_404s_are_not_the_refusal(status: int, body: object) -> None:
    assert not cv.is_rejection(status, json.dumps(body).encode())


def test_the_client_message_names_the_cause_and_the_fix() -> None:
    text = cv.rejection_message("2.9.4")
    assert "2.9.4" in text and "no longer supported" in text and "version_floor" in text


# -- the service: never blocks, has a deadline, keeps the last good version -----------

from twisted.internet.defer import Deferred, succeed  # noqa: E402
from twisted.internet.task import Clock  # noqa: E402

from gateway.upstream.version import ClientVersion  # noqa: E402


class FakeResponse:
    def __init__(self, code: int, body: bytes) -> None:
        self.code = code
        self._body = body

    def content(self) -> Deferred[bytes]:
        return succeed(self._body)


class FakeHTTP:
    def __init__(self) -> None:
        self.answers: list[object] = []
        self.calls = 0

    def get(self, url: str, timeout: float) -> Deferred[object]:
        self.calls += 1
        answer = self.answers.pop(0)
        return answer if isinstance(answer, Deferred) else succeed(answer)


def service(http: FakeHTTP, clock: Clock) -> ClientVersion:
    return ClientVersion(http, clock, url="http://updates/manifest/latest-arm64-mac.yml", floor="2.9.1",
                         template="antigravity/hub/{version} darwin/arm64", interval=21600, timeout=15)


def test_a_fetch_past_its_deadline_keeps_the_last_good_version() -> None:
    clock, http = Clock(), FakeHTTP()
    version = service(http, clock)
    http.answers = [FakeResponse(200, b"version: 2.12.2\n"), Deferred()]
    version.refresh()
    assert version.current() == "2.12.2" and version.user_agent() == "antigravity/hub/2.12.2 darwin/arm64"
    pending = version.refresh()
    assert version.current() == "2.12.2"  # reads never wait for a fetch
    clock.advance(15)
    assert pending.called and version.current() == "2.12.2" and version.last_error


def test_the_timer_refetches_and_an_immediate_refresh_is_rate_limited() -> None:
    clock, http = Clock(), FakeHTTP()
    version = service(http, clock)
    http.answers = [FakeResponse(200, b"version: 2.9.4\n"), FakeResponse(200, b"version: 3.0.1\n"), FakeResponse(500, b"")]
    version.start()
    assert version.current() == "2.9.4" and http.calls == 1
    version.refresh_soon()
    assert version.current() == "3.0.1" and http.calls == 2
    version.refresh_soon()  # a second refusal moments later does not fetch again
    assert http.calls == 2
    clock.advance(21600)
    assert http.calls == 3 and version.current() == "3.0.1"
    version.stop()
    assert not clock.getDelayedCalls()
