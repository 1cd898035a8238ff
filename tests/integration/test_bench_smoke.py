"""The benchmark runs end to end on a tiny load and reports all five cases.

Speed is the benchmark's business (bench/run, numbers in the README), not the
test suite's: this only checks that the suite starts an emulator and a
gateway, drives both with wrk and the stream clients, and writes its JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_bench_quick_run_writes_all_five_cases(tmp_path: Path) -> None:
    env = dict(os.environ, ANTIGRAVITY_VENV=str(Path(sys.executable).parent.parent))
    argv = [
        str(ROOT / "bench" / "run"), "--quick", "--out", str(tmp_path), "--name", "smoke",
        "--duration", "1", "--concurrency", "1,4", "--large-concurrency", "1",
        "--stream-count", "5", "--streams", "20", "--hold", "0.5", "--pool-iterations", "200",
    ]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode == 3 and shutil.which("wrk") is None:
        pytest.skip("wrk is not installed and could not be installed")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    result = json.loads((tmp_path / "smoke.json").read_text())
    for key in ("case1_generate", "case2_generate_1mib", "case3_stream", "case4_open_streams", "case5_pool"):
        assert key in result, key
    c1 = result["case1_generate"]["points"]
    assert [p["concurrency"] for p in c1] == [1, 4]
    for point in c1 + result["case2_generate_1mib"]["points"]:
        for side in ("direct", "gateway"):
            assert point[side]["requests"] > 0
            assert point[side]["errors"] == 0, point[side]
    stream = result["case3_stream"]
    assert stream["direct"]["events"] == stream["gateway"]["events"] == 50
    held = result["case4_open_streams"]
    for phase in ("idle_direct", "idle_gateway", "flowing_direct", "flowing_gateway"):
        assert held[phase]["opened"] == 20, (phase, held[phase])
    assert held["idle_gateway"]["gateway"]["rss_mib"] > 0
    assert held["flowing_gateway"]["events_per_s"] > 0
    assert result["case5_pool"]["policies"]
    assert all(p["us_per_choose"] > 0 for p in result["case5_pool"]["policies"].values())
    assert "generateContent" in (tmp_path / "smoke.md").read_text()
