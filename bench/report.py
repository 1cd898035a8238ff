"""The benchmark's table (Markdown, also printed) and chart (PNG, matplotlib) from its JSON.

``python bench/report.py bench/results/latest.json`` redraws both from a saved run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

TARGETS = {
    "c1_added_p50_ms": 0.5,
    "c1_added_p99_ms": 1.5,
    "c64_rps": 2000,
    "stream_added_per_event_us": 500,
    "stream_added_first_ms": 2.0,
    "idle_streams_rss_mib": 150,
}


def _ok(good: bool) -> str:
    return "yes" if good else "**no**"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a and b else "–"


def table(doc: dict[str, Any]) -> str:
    env = doc["environment"]
    lines = [
        f"Run {env['date']} · {env['source']} {env['commit'][:10]}{' (dirty)' if env.get('dirty') else ''} · "
        f"{env['implementation']} {env['python']} · Twisted {env['twisted']} · {env['cpus']} CPUs ({env['cpu_model']}) · "
        + ("pinned: gateway CPU {gateway}, emulator + load CPU {emulator}".format(**env["pinning"]) if env.get("pinning") else "not pinned")
        + (" · **quick run**" if doc.get("quick") else ""),
        "",
    ]
    for key, title in (("case1_generate", "1. generateContent, small body"),
                       ("case2_generate_1mib", "2. generateContent, 1 MiB body")):
        case = doc.get(key)
        if not case:
            continue
        lines += [
            f"**{title}** ({case['duration_s']:g} s per point, wrk)",
            "",
            "| conc. | direct req/s | gateway req/s | ratio | direct p50 / p99 ms | gateway p50 / p99 ms | added p50 / p99 ms | gateway CPU µs/req | emulator CPU µs/req d/g | errors d/g | other load % d/g |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for pt in case["points"]:
            d, g = pt["direct"], pt["gateway"]
            lines.append(
                f"| {pt['concurrency']} | {d['rps']:,.0f} | {g['rps']:,.0f} | {_ratio(g['rps'], d['rps'])} | "
                f"{d['latency_ms']['p50']:.2f} / {d['latency_ms']['p99']:.2f} | "
                f"{g['latency_ms']['p50']:.2f} / {g['latency_ms']['p99']:.2f} | "
                f"{pt['added_ms']['p50']:+.2f} / {pt['added_ms']['p99']:+.2f} | "
                f"{g['gateway_cpu_us_per_req']:.0f} ({g['gateway_cpu_pct']:.0f}% busy) | "
                f"{d['emulator_cpu_us_per_req']:.0f} / {g['emulator_cpu_us_per_req']:.0f} | {d['errors']} / {g['errors']} | "
                f"{d.get('foreign_cpu_pct', 0):.0f} / {g.get('foreign_cpu_pct', 0):.0f} |"
            )
        lines.append("")
    s = doc.get("case3_stream")
    if s:
        d, g = s["direct"], s["gateway"]
        d1, g1 = s["direct_1_event"], s["gateway_1_event"]
        n = s["events_requested"]
        lines += [
            f"**3. streamGenerateContent?alt=sse, {n} events** "
            f"({d['count']} sequential streams per side and length, no delay between events)",
            "",
            "| | direct p50 / p99 | gateway p50 / p99 | added p50 / p99 |",
            "|---|---:|---:|---:|",
            f"| first event (1-event stream) µs | {d1['first_event_us']['p50']:.0f} / {d1['first_event_us']['p99']:.0f} | "
            f"{g1['first_event_us']['p50']:.0f} / {g1['first_event_us']['p99']:.0f} | "
            f"{s['added_first_event_us']['p50']:+.0f} / {s['added_first_event_us']['p99']:+.0f} |",
            f"| first event ({n}-event burst) µs | {d['first_event_us']['p50']:.0f} / {d['first_event_us']['p99']:.0f} | "
            f"{g['first_event_us']['p50']:.0f} / {g['first_event_us']['p99']:.0f} | "
            f"{g['first_event_us']['p50'] - d['first_event_us']['p50']:+.0f} / "
            f"{g['first_event_us']['p99'] - d['first_event_us']['p99']:+.0f} |",
            f"| whole {n}-event stream µs | {d['total_us']['p50']:.0f} / {d['total_us']['p99']:.0f} | "
            f"{g['total_us']['p50']:.0f} / {g['total_us']['p99']:.0f} | "
            f"{s['added_total_us']['p50']:+.0f} / {s['added_total_us']['p99']:+.0f} |",
            f"| per event µs | | | {s['added_per_event_us']['p50']:+.1f} / {s['added_per_event_us']['p99']:+.1f} |",
            "",
        ]
    h = doc.get("case4_open_streams")
    if h:
        lines += [
            f"**4. {h['streams']} concurrent open streams** (fresh gateway: {h['gateway_rss_mib_fresh']} MiB RSS; "
            f"{h['hold_s']:g} s measured per phase; flowing = one event per stream every {h['flow_event_delay_s']:g} s)",
            "",
            "| phase | side | streams open | events/s delivered | gateway RSS MiB | gateway CPU % | emulator RSS MiB | emulator CPU % |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for phase in ("idle", "flowing"):
            for side in ("direct", "gateway"):
                r = h.get(f"{phase}_{side}")
                if not r:
                    continue
                gw = r.get("gateway")
                em = r["emulator"]
                lines.append(
                    f"| {phase} | {side} | {r['opened']} | {r['events_per_s']:,.0f} | "
                    f"{gw['rss_mib'] if gw else '–'} | {gw['cpu_pct'] if gw else '–'} | {em['rss_mib']} | {em['cpu_pct']} |"
                )
        lines.append("")
    p = doc.get("case5_pool")
    if p:
        lines += [
            f"**5. Account selection**, {p['accounts']} accounts, {p['cooling']:.0%} cooling "
            f"({p['cooling_method']}), in-process `AccountPool.choose`",
            "",
            "| policy | µs per choose | with 2 excluded | none cooling |",
            "|---|---:|---:|---:|",
        ]
        for name, r in p["policies"].items():
            lines.append(f"| {name} | {r['us_per_choose']} | {r['us_per_choose_2_excluded']} | {r['us_per_choose_none_cooling']} |")
        wt = p.get("work_tree")
        if wt and "policies" in wt:
            for name, r in wt["policies"].items():
                lines.append(f"| {name} (work tree, {wt['cooling_method']}) | {r['us_per_choose']} | "
                             f"{r['us_per_choose_2_excluded']} | {r['us_per_choose_none_cooling']} |")
        lines.append("")
    lines += targets(doc)
    return "\n".join(lines).rstrip()


def targets(doc: dict[str, Any]) -> list[str]:
    rows = []
    c1 = {pt["concurrency"]: pt for pt in doc.get("case1_generate", {}).get("points", [])}
    if 1 in c1:
        a = c1[1]["added_ms"]
        rows.append(f"| c1 added p50 ≤ 0.5 ms | {a['p50']:.2f} ms | {_ok(a['p50'] <= TARGETS['c1_added_p50_ms'])} |")
        rows.append(f"| c1 added p99 ≤ 1.5 ms | {a['p99']:.2f} ms | {_ok(a['p99'] <= TARGETS['c1_added_p99_ms'])} |")
    if 64 in c1:
        g = c1[64]["gateway"]
        rows.append(f"| c64 ≥ 2,000 req/s, no errors | {g['rps']:,.0f} req/s, {g['errors']} errors | "
                    f"{_ok(g['rps'] >= TARGETS['c64_rps'] and g['errors'] == 0)} |")
    s = doc.get("case3_stream")
    if s:
        rows.append(f"| stream: ≤ 0.5 ms added per event | {s['added_per_event_us']['p50']:.0f} µs | "
                    f"{_ok(s['added_per_event_us']['p50'] <= TARGETS['stream_added_per_event_us'])} |")
        rows.append(f"| stream: first event added ≤ 2 ms | {s['added_first_event_us']['p50'] / 1000:.2f} ms | "
                    f"{_ok(s['added_first_event_us']['p50'] / 1000 <= TARGETS['stream_added_first_ms'])} |")
    h = doc.get("case4_open_streams")
    if h and h.get("idle_gateway"):
        r = h["idle_gateway"]
        rows.append(f"| {r['opened']} idle streams ≤ 150 MiB RSS | {r['gateway']['rss_mib']} MiB | "
                    f"{_ok(r['gateway']['rss_mib'] <= TARGETS['idle_streams_rss_mib'] and r['opened'] >= 1000)} |")
    if not rows:
        return []
    return ["**Targets**", "", "| target | measured | met |", "|---|---:|:---:|", *rows]


def chart(doc: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    case = doc.get("case1_generate")
    if not case:
        return None
    points = case["points"]
    conc = [pt["concurrency"] for pt in points]
    x = range(len(conc))
    fig, (lat, thr) = plt.subplots(1, 2, figsize=(11, 4.2))
    for side, colour in (("direct", "tab:blue"), ("gateway", "tab:orange")):
        for pct, style in (("p50", "-"), ("p99", "--")):
            lat.plot(list(x), [pt[side]["latency_ms"][pct] for pt in points], style, marker="o", color=colour,
                     label=f"{side} {pct}")
    lat.set_yscale("log")
    lat.set_xticks(list(x), [str(c) for c in conc])
    lat.set_xlabel("concurrent connections")
    lat.set_ylabel("latency, ms (log)")
    lat.set_title("generateContent latency by concurrency")
    lat.grid(True, which="both", alpha=0.3)
    lat.legend()
    width = 0.38
    thr.bar([i - width / 2 for i in x], [pt["direct"]["rps"] for pt in points], width, label="direct", color="tab:blue")
    thr.bar([i + width / 2 for i in x], [pt["gateway"]["rps"] for pt in points], width, label="gateway", color="tab:orange")
    thr.axhline(2000, color="grey", linestyle=":", label="target at c64: 2,000")
    thr.set_xticks(list(x), [str(c) for c in conc])
    thr.set_xlabel("concurrent connections")
    thr.set_ylabel("requests / s")
    thr.set_title("generateContent throughput")
    thr.legend()
    env = doc["environment"]
    fig.suptitle(f"antigravity-gateway vs direct to the emulator — {env['source']} {env['commit'][:10]}, {env['date']}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    src = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results" / "latest.json")
    document = json.loads(src.read_text())
    print(table(document))
    print(chart(document, src.with_suffix(".png")) or "no chart (matplotlib missing)")
