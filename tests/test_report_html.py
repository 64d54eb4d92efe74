"""`report --html` and `process --html-report`: one self-contained page with the summary and
charts, bounded in size, rendered by a real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from batchrun.cli import app
from batchrun.records import Result, Usage
from batchrun.results.html_report.html import render_report
from batchrun.results.timeline import RunTimeline, finished_at
from batchrun.store.wire import result_line

from .conftest import write_jsonl
from .test_process import run

CHARTS = ("chart-throughput", "chart-latency", "chart-cost", "chart-errors")


def report(args: list[str]) -> Any:
    return CliRunner().invoke(app, ["report", *args], catch_exceptions=False)


def _two_model_run(tmp_path: Path, sim_factory: Any) -> Path:
    """A real run on the simulator: two models, 429s, failures and a bad line."""
    sim = sim_factory(latency_ms=5, jitter_ms=10, rpm=6000, error_rate=0.05, error_kinds=("500", "429"), seed=4)
    rows: list[Any] = [{"id": f"r{i}", "text": f"ticket {i}", "model": "deepseek-chat" if i % 3 else "gpt-4o-mini"}
                       for i in range(400)]
    rows.append("{bad line")
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    res = run([str(inp), "--base-url", sim.url, "--quiet", "--concurrency", "16", "--max-attempts", "1",
               "--html-report", str(tmp_path / "run.html"), "--model-field", "model"])
    assert res.exit_code == 1, res.output
    return tmp_path / "in.results.jsonl"


def _check_page(page: str) -> None:
    for ident in CHARTS:
        assert f'id="{ident}"' in page
    assert "gpt-4o-mini" in page and "deepseek-chat" in page
    # nothing fetched at view time: no script, link, image, font or URL of any kind
    assert not re.search(r"https?:|<script|<link|<img|<iframe|@import|url\(", page, re.I)


def test_report_html_is_self_contained_with_both_models_the_total_and_four_charts(tmp_path: Path,
                                                                                   sim_factory: Any) -> None:
    results = _two_model_run(tmp_path, sim_factory)
    page_of_run = (tmp_path / "run.html").read_text(encoding="utf-8")  # process --html-report
    _check_page(page_of_run)
    out = tmp_path / "report.html"
    res = report([str(results), "--html", str(out), "--json"])
    assert res.exit_code == 0, res.output
    page = out.read_text(encoding="utf-8")
    _check_page(page)
    total = re.search(r'"total_cost_usd": ([0-9.]+)', res.stdout)
    assert total and f"${float(total[1]):.6f}" in page
    assert page.count("<polyline") >= 2 + 2 + 2  # 3 rate series, a latency and a cost line per model
    assert "invalid_input" in page and "server_error" in page  # errors by code
    assert 3_000 < len(page) < 60_000


def test_a_long_run_gives_a_small_report() -> None:
    """The timeline keeps at most MAX_BUCKETS buckets however many lines, and draws 240."""
    tl = RunTimeline()
    for i in range(200_000):  # ten hours of a run, two models
        tl.add(1_790_000_000 + i * 0.18, "a" if i % 2 else "b", i % 50 != 0, i % 7 == 0, 1e-5, 100 + i % 900,
               None if i % 50 else "server_error")
    assert len(tl.counts) <= 4096
    s = tl.series()
    assert s is not None and len(s.ok) <= 240 and s.width >= 10 * 3600 / 240
    # a steady 0.98 / 0.18 s completions a second, the partly filled first and last buckets too
    assert all(abs(v - 0.98 / 0.18) < 0.05 for v in s.ok), (s.ok[0], s.ok[-1])
    assert abs(s.cumulative_cost["a"][-1] - 1.0) < 1e-6
    data = {"models": {m: {"requests": 100_000, "succeeded": 98_000, "failed": 2_000, "error_rate": 0.02,
                           "attempts": 100_000, "rate_limited": 14_286, "fallbacks": 0, "input_tokens": 1,
                           "output_tokens": 1, "cached_tokens": 0, "cost_usd": 1.0,
                           "latency_ms": {"p50": 550.0, "p95": 955.0}} for m in ("a", "b")},
            "records": {"total": 200_000, "succeeded": 196_000, "failed": 4_000, "invalid": 0},
            "total_cost_usd": 2.0, "unpriced_models": []}
    assert len(render_report(data, tl, "big.results.jsonl")) < 60_000


def test_finished_at_is_read_off_the_line_and_every_line_has_its_times(tmp_path: Path, sim_factory: Any) -> None:
    line = result_line(Result(key="k", line=1, model="m", status_code=200, body={"finished_at": 5},
                              usage=Usage(1, 1), started_at=1_790_000_000.25), 1_790_000_001.5)
    assert finished_at(line) == 1_790_000_001.5
    assert finished_at(b'{"custom_id": "x"}\n') is None
    results = _two_model_run(tmp_path, sim_factory)
    for raw in results.read_text().splitlines():
        br = json.loads(raw)["batchrun"]
        assert isinstance(br["finished_at"], float)
        if json.loads(raw)["error"] is None or json.loads(raw)["error"]["code"] != "invalid_input":
            assert br["started_at"] <= br["finished_at"]


def test_html_paths_that_cannot_be_written_are_refused_before_anything_is_sent(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "t"}])
    res = run([str(inp), "--base-url", sim.url, "--model", "m", "--html-report", str(tmp_path / "no" / "r.html")])
    assert res.exit_code == 2 and "cannot write the HTML report" in res.output
    assert sim.stats.requests == 0
    assert not (tmp_path / "in.results.jsonl").exists()
    results = tmp_path / "r.results.jsonl"
    results.write_bytes(result_line(Result(key="a", line=1, model="m", status_code=200, body={}), 1.0))
    for args, words in (([str(results), "--html", str(tmp_path / "no" / "r.html")], "cannot write the HTML report"),
                        ([str(inp), "--html", str(tmp_path / "r.html")], "is not a batchrun results file"),
                        ([str(results), "--html", str(results)], "would overwrite")):
        res = report(args)
        assert res.exit_code == 2 and words in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.html").exists()


# -- a real browser --------------------------------------------------------------------------

def _browser() -> str | None:
    for name in ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "headless_shell"):
        if path := shutil.which(name):
            return path
    return None


def _chromium(browser: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--no-first-run", "--virtual-time-budget=3000", *args],
                          capture_output=True, timeout=90, check=True)


def _ink(png: bytes) -> float:
    """Share of non-zero bytes in a PNG's filtered image data: ~0 for a blank page (every row
    repeats the last), well above it where something is drawn."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    data, i = b"", 8
    while i < len(png):
        size = int.from_bytes(png[i:i + 4], "big")
        if png[i + 4:i + 8] == b"IDAT":
            data += png[i + 8:i + 8 + size]
        i += 12 + size
    raw = zlib.decompress(data)
    return 1 - raw.count(0) / len(raw)


@pytest.mark.skipif(_browser() is None, reason="no Chromium found (apt-get install chromium-headless-shell; "
                                                ".ci/run installs it)")
def test_report_renders_in_headless_chromium(tmp_path: Path, sim_factory: Any) -> None:
    browser = _browser()
    assert browser is not None
    results = _two_model_run(tmp_path, sim_factory)
    page = tmp_path / "report.html"
    assert report([str(results), "--html", str(page)]).exit_code == 0
    dom = _chromium(browser, "--dump-dom", page.as_uri()).stdout.decode()
    charts = re.findall(r'<section class="chart" id="(chart-[a-z]+)"><h2>[^<]*</h2><svg class="plot"', dom)
    assert len(charts) >= 3 and set(charts) == set(CHARTS), charts
    assert dom.count("<polyline") >= 6 and "<rect" in dom  # lines and bars, parsed as SVG
    assert "gpt-4o-mini" in dom and "deepseek-chat" in dom

    shot = tmp_path / "report.png"
    _chromium(browser, "--window-size=1040,2200", f"--screenshot={shot}", page.as_uri())
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    blank_shot = tmp_path / "blank.png"
    _chromium(browser, "--window-size=1040,2200", f"--screenshot={blank_shot}", blank.as_uri())
    blank_ink, ink = _ink(blank_shot.read_bytes()), _ink(shot.read_bytes())
    assert blank_ink < 0.002  # the measure tells a blank page
    assert ink > max(0.01, 20 * blank_ink), f"the screenshot of the report is blank ({ink:.4f})"


# -- the migration ---------------------------------------------------------------------------

TEMPLATE = ('Classify this support ticket. Reply with JSON only, like {{"category": "billing|shipping|technical", '
            '"urgency": "low|medium|high"}}. Ticket: {text}')
TICKETS = ("I want a refund for order {i}", "parcel {i} is stuck in customs", "the app crashes on login {i}",
           "I was charged twice for invoice {i}")


def _migration_run(tmp_path: Path, sim_factory: Any) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """A canary that fails half its answers (rolled back) and a shadow on the same failing server
    whose classifications differ for some tickets: a real run of `batchrun process`."""
    from .test_migration import KEYS, process, toml

    old = sim_factory(api_key=KEYS["OLD_KEY"], latency_ms=2)
    new = sim_factory(api_key=KEYS["NEW_KEY"], latency_ms=2, error_rate=0.5, error_kinds=("500",), seed=3,
                      differ_share=0.4)
    cfg = toml(tmp_path, old.url, new.url, '[canary]\nmodel = "new/gpt-4o-mini"\nshare = 0.3\nwindow = 20\n'
               '[shadow]\nmodel = "new/deepseek-chat"\nshare = 0.5\n')
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": f"t{i}", "text": TICKETS[i % 4].format(i=i)} for i in range(120)])
    done, summ = process(tmp_path, inp, cfg, "--template", TEMPLATE, "--concurrency", "4")
    assert done.returncode == 0, done.stderr
    assert summ["canary"]["state"] == "rolled_back" and summ["shadow"]["failed"] > 0
    assert "rolled back" in done.stdout and summ["canary"]["reason"] in done.stdout.replace("\n", "")
    return tmp_path / "in.results.jsonl", summ, {"old": old.stats.requests, "new": new.stats.requests}


@pytest.mark.skipif(_browser() is None, reason="no Chromium found")
def test_the_report_of_a_rolled_back_canary_with_a_shadow_tells_the_migration(tmp_path: Path,
                                                                              sim_factory: Any) -> None:
    browser = _browser()
    assert browser is not None
    results, summ, received = _migration_run(tmp_path, sim_factory)
    page = tmp_path / "report.html"
    res = report([str(results), "--html", str(page), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout[res.stdout.index("{"):])
    assert abs(data["total_cost_usd"] - summ["total_cost_usd"]) < 1e-6  # the shadow's answers counted
    dom = _chromium(browser, "--dump-dom", page.as_uri()).stdout.decode()
    text = re.sub(r"<[^>]+>", " ", dom).replace("&amp;", "&")
    text = " ".join(text.split())
    c, s = summ["canary"], summ["shadow"]
    assert 'id="migration"' in dom and "Canary new/gpt-4o-mini against its baseline" in text
    assert "canary new/gpt-4o-mini rolled back at " in text and f"on {c['threshold']}: {c['reason']}" in text
    assert f"after {c['records_at_change']} canary answer(s)" in text and "judged on window 20" in text
    assert f"{s['agreed']} of {s['compared']} compared agreed" in text and s["compared"] > s["agreed"] > 0
    differ = re.search(r'<table id="shadow-differ">.*?</table>', dom, re.S)
    assert differ and differ[0].count("<tr>") >= 2 and "urgency" in differ[0]  # both answers, escaped JSON
    providers = re.search(r'<table id="providers">.*?</table>', dom, re.S)
    assert providers
    for name, n in received.items():  # every request each server received, in the page
        assert re.search(rf"<td>{name}</td><td>{n}</td>", providers[0]), (name, n)
    values = re.search(r'<table id="field-values">.*?</table>', dom, re.S)
    assert values and "category" in values[0] and "billing (" in values[0] and "urgency" in values[0]
    differs = re.search(r'<table id="field-differs">.*?</table>', dom, re.S)
    assert differs and "urgency" in differs[0] and "→" in differs[0]
    assert "class=\"mark\"" in dom and "rolled back" in dom  # the rollback on the timeline

    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "r.results.jsonl").write_bytes(results.read_bytes())  # no checkpoint, no shadow file beside it
    res = report([str(alone / "r.results.jsonl"), "--html", str(alone / "r.html")])
    assert res.exit_code == 0, res.output
    page_alone = (alone / "r.html").read_text()
    assert "its decision is not known" in page_alone and "billing (" in page_alone


def test_answers_shown_in_the_migration_are_escaped_and_cut_short() -> None:
    from batchrun.results.html_report.migration_html import migration_section

    long = "<script>alert(1)</script>" + "x" * 1000
    data = {"migration": {"canary": None, "providers": {}, "shadow": {
        "model": "m<b>", "answered": 1, "failed": 0, "compared": 1, "agreed": 0, "agreement": 0.0, "cost_usd": 0.0,
        "differ": [{"key": "k&1", "main": long[:240], "shadow": "<i>no</i>"}]}}}
    html = migration_section(data)
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;i&gt;no" in html and "k&amp;1" in html


def test_field_values_are_counted_and_bounded() -> None:
    from batchrun.results.findings import MAX_VALUES, OTHER, FieldDiffs, FieldValues

    values = FieldValues()
    for i in range(MAX_VALUES + 100):
        values.add({"category": "billing" if i % 2 else "shipping", "id": i})
    top = values.top()
    assert top["answers"] == MAX_VALUES + 100
    assert sorted(top["fields"]["category"]) == [["billing", 300], ["shipping", 300]]
    assert [OTHER, 100] in top["fields"]["id"]  # distinct values past the bound are counted, not kept
    diffs = FieldDiffs()
    diffs.add({"urgency": "low", "category": "x"}, {"urgency": "high", "category": "x"})
    diffs.add({"urgency": "low"}, {"urgency": "high"})
    assert diffs.summary()["urgency"] == {"compared": 2, "differ": 2, "pairs": [["low", "high", 2]]}
    assert diffs.summary()["category"]["differ"] == 0
