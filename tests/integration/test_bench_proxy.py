"""harness bench's network proxy figure: round trips through the harness's network link with no toxic, beside
the same round trips straight to the server, measured on a real server through a real proxy."""

from __future__ import annotations

import threading

from harness.perf.bench import BenchReport, add_proxy_figures, render

FIGURES = {f"{path}_roundtrip_{stat}_us" for path in ("direct", "proxy") for stat in ("median", "p99")} | {
    "proxy_vs_direct_roundtrip_median",
    "proxy_vs_direct_roundtrip_p99",
}


def _proxy_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name in {"proxy-loop", "proxy-api"}}


def test_the_proxy_figure_sits_beside_direct_round_trips(dsn: str) -> None:
    before = _proxy_threads()
    report = BenchReport()
    add_proxy_figures(report, dsn, samples=400)
    assert set(report.figures) == FIGURES
    figures = report.figures
    for path in ("direct", "proxy"):
        assert 0 < figures[f"{path}_roundtrip_median_us"] <= figures[f"{path}_roundtrip_p99_us"]
    # Through the proxy a round trip takes two more hops than straight to the server: if the figure measured
    # the direct connection twice, the median ratio would sit around 1.
    assert figures["proxy_vs_direct_roundtrip_median"] > 1
    assert all(name in render(report) for name in FIGURES)
    # The proxy it started is gone with its threads: a bench leaves nothing running.
    assert _proxy_threads() <= before
