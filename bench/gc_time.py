"""The garbage collector's time per request, gateway under wrk at c1 and c64.

CPU per request swings with the machine's other load; the collector's own time
(``gc.callbacks`` around every collection, ``bench/gc_probe.py``) is a direct
reading. ``--thresholds`` compares settings against the gateway's own
(``default`` = what ``gateway.tap.settle_heap`` sets).

    bench/run-gc [--thresholds default,700,10,10] [--duration 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import scaling  # noqa: E402
import stack  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--thresholds", default="default",
                   help="settings to compare, separated by spaces or ';': 'default' or 'a,b,c' (e.g. 'default;700,10,10')")
    p.add_argument("--concurrency", default="1,64")
    p.add_argument("--duration", type=float, default=3.0)
    a = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="agw-gc."))
    stack.use_source(None, work)
    emu = stack.emulator(work, None).start()
    rows = []
    try:
        public = stack.public_body("Say hello in one short sentence.")
        body = work / "body.json"
        body.write_bytes(json.dumps(public).encode())
        for setting in a.thresholds.replace(";", " ").split():
            out = work / f"gc-{setting}.jsonl"
            os.environ["AGW_GC_OUT"] = str(out)
            os.environ["AGW_GC_THRESHOLDS"] = "" if setting == "default" else setting
            gw = stack.gateway(work, emu.url, None, f"-gc-{setting}")
            gw.argv = [sys.executable, str(BENCH / "gc_probe.py"), *gw.argv[1:]]
            gw.start()
            time.sleep(1.5)  # past the probe's threshold change
            target = stack.gateway_target(gw.url)
            try:
                for c in (int(x) for x in a.concurrency.split(",")):
                    scaling.collect([scaling.wrk(target, body, c, 1, work, f"gc-{c}-warm")])
                    os.kill(gw.pid, signal.SIGUSR2)
                    time.sleep(0.3)
                    before = gw.stat()
                    result = scaling.collect([scaling.wrk(target, body, c, a.duration, work, f"gc-{c}")])
                    cpu = (gw.stat().cpu_s - before.cpu_s) * 1e6 / result["requests"]
                    os.kill(gw.pid, signal.SIGUSR2)
                    time.sleep(0.3)
                    gc_stats = json.loads(out.read_text().splitlines()[-1])
                    n = result["requests"]
                    rows.append({"thresholds": setting, "concurrency": c, "rps": result["rps"], "cpu_us_per_req": round(cpu, 1),
                                 "gc_us_per_req": round(sum(gc_stats["seconds"]) * 1e6 / n, 1),
                                 "collections_per_1000": [round(x * 1000 / n, 1) for x in gc_stats["collections"]]})
                    print(json.dumps(rows[-1]), flush=True)
            finally:
                gw.stop()
    finally:
        emu.stop()
    print("| thresholds | c | req/s | CPU µs/req | GC µs/req | collections per 1,000 req (gen 0/1/2) |")
    print("|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['thresholds']} | {r['concurrency']} | {r['rps']:,.0f} | {r['cpu_us_per_req']:.0f} | {r['gc_us_per_req']} | "
              f"{' / '.join(str(x) for x in r['collections_per_1000'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
