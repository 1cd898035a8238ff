"""The openai Node SDK (npm ``openai``) against a ``twist``-started gateway and emulator.

A small script (``js/openai_node.mjs``) makes the calls a Node app makes —
``responses.create`` plain, streamed, with a tool round trip through
``previous_response_id``, ``responses.retrieve`` and ``delete``, and ``images.generate`` — and prints what came back.
Node >= 22 and the SDK come from ``tests/clients/js`` (``npm ci``; ``.ci/run`` does it), like
every npm client (``tests.clients.npm``).
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from tests.clients import npm
from tests.clients.stack import ClientStack

pytestmark = pytest.mark.clients


def test_node_sdk_responses_and_images(gw: ClientStack, tmp_path: Path) -> None:
    node = npm.tool("node")
    if not (npm.JS / "node_modules" / "openai").exists():
        pytest.skip(f"the openai Node SDK is not installed: run `npm ci` in {npm.JS} (.ci/run does)")
    result = subprocess.run([str(node), str(npm.JS / "openai_node.mjs"), gw.url + "/v1"], cwd=npm.JS,
                            env=npm.env(tmp_path / "home"), capture_output=True, text=True, timeout=npm.TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["text"] == "Echo: Hello from node" and out["status"] == "completed"
    assert out["streamTypes"][0] == "response.created" and out["streamTypes"][-1] == "response.completed"
    assert out["streamSequence"] == list(range(len(out["streamTypes"])))
    assert out["streamText"] == "Echo: Node stream 3 events"
    args = json.loads(out["call"]["arguments"])  # the emulator's placeholder, or schema-valid once it answers like a model
    assert out["call"]["name"] == "get_weather" and isinstance(args.get("city"), str)
    assert out["afterTool"].startswith("Results: get_weather=") and "foggy" in out["afterTool"]
    assert out["missing"]["status"] == 400 and "resp_missing" in out["missing"]["message"]
    assert out["retrieved"] == "Echo: Hello from node"  # responses.retrieve, then responses.delete
    assert out["afterDelete"]["status"] == 404 and "not found" in out["afterDelete"]["message"]
    assert base64.b64decode(out["image"]).startswith(b"\x89PNG\r\n\x1a\n")
