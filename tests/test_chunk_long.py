"""--chunk-long: records longer than their model's context window answered in pieces, against a
real simulator that answers 400 context_length_exceeded above its window."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from batchrun.input.chunks import split_text
from batchrun.input.tokens import text_tokens
from batchrun.results.answer import answer_text

from .conftest import read_results, write_jsonl
from .test_process import run

WINDOW = 1000


def contract(i: int, paragraphs: int = 20) -> str:
    """About 150 estimated tokens a paragraph: 20 make three windows of 1000."""
    return "\n\n".join(" ".join(f"Clause {i}.{p}.{s}: the supplier shall deliver the goods on time."
                                for s in range(10)) for p in range(paragraphs))


def config(tmp: Path, extra: str = "") -> Path:
    path = tmp / "batchrun.toml"
    path.write_text(f'chunk_long = true\n{extra}\n[context_windows]\n"gpt-4o-mini" = {WINDOW}\n')
    return path


def test_long_records_are_answered_in_pieces_and_short_ones_whole(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(context_window=WINDOW)
    rows: list[dict[str, Any]] = [{"id": f"s{i}", "text": f"short ticket {i}: the parcel is late"} for i in range(100)]
    rows += [{"id": f"L{i}", "text": contract(i)} for i in range(20)]
    assert 2.9 * WINDOW < text_tokens(contract(19)) < 3.2 * WINDOW
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    res = run([str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--config", str(config(tmp_path)),
               "--system", "Summarise the text.", "--quiet", "--concurrency", "8"])
    assert res.exit_code == 0, res.output
    assert sim.stats.statuses[400] == 0  # counted at the server: no piece was over its window
    out = read_results(tmp_path / "in.results.jsonl")
    assert sorted(r["custom_id"] for r in out) == sorted(r["id"] for r in rows)  # one line per record
    by_id = {r["custom_id"]: r for r in out}
    assert all(r["error"] is None for r in out)
    assert all("chunks" not in by_id[f"s{i}"]["batchrun"] for i in range(100))
    pieces = [by_id[f"L{i}"]["batchrun"]["chunks"] for i in range(20)]
    assert all(2 <= n <= 4 for n in pieces), pieces
    assert sim.stats.requests == 100 + sum(pieces)  # each piece its own request, each short one one
    first = by_id["L0"]
    body = first["response"]["body"]
    assert len(body["chunks"]) == first["batchrun"]["chunks"]
    assert first["batchrun"]["input_tokens"] == sum(c["usage"]["prompt_tokens"] for c in body["chunks"])
    assert answer_text(body) == "\n\n".join(answer_text(c) for c in body["chunks"])


def test_export_shows_the_joined_answer(tmp_path: Path, sim_factory) -> None:
    from typer.testing import CliRunner

    from batchrun.cli import app

    sim = sim_factory(context_window=WINDOW)
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "L", "text": contract(0)}])
    assert run([str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini",
                "--config", str(config(tmp_path)), "--quiet"]).exit_code == 0
    csv = tmp_path / "out.jsonl"
    done = CliRunner().invoke(app, ["export", str(tmp_path / "in.results.jsonl"), "--input", str(inp),
                                    "--format", "jsonl", "-o", str(csv)])
    assert done.exit_code == 0, done.output
    row = json.loads(csv.read_text().splitlines()[0])
    line = read_results(tmp_path / "in.results.jsonl")[0]
    assert row["status"] == "ok" and row["answer"].count("\n\n") == line["batchrun"]["chunks"] - 1


def test_without_chunk_long_the_server_refuses_the_long_record(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(context_window=WINDOW)
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "L", "text": contract(0)}])
    res = run([str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--quiet"])
    assert res.exit_code == 1
    assert read_results(tmp_path / "in.results.jsonl")[0]["error"]["code"] == "context_length_exceeded"
    assert sim.stats.statuses[400] == 1


def test_a_template_wraps_each_piece(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(context_window=WINDOW)
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "L", "title": "Lease", "body": contract(0)}])
    res = run([str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--config", str(config(tmp_path)),
               "--template", "Summarise the contract {title}:\n{body}", "--quiet"])
    assert res.exit_code == 0, res.output
    n = read_results(tmp_path / "in.results.jsonl")[0]["batchrun"]["chunks"]
    prompts = list(sim.stats.by_prompt)
    assert n >= 2 and len(prompts) == n
    assert all(p.startswith("Summarise the contract Lease:") for p in prompts)


def test_a_model_with_no_known_window_is_sent_whole_and_said(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "L", "text": "a short one"}])
    cfg = tmp_path / "batchrun.toml"
    cfg.write_text("chunk_long = true\n")
    res = run([str(inp), "--base-url", sim.url, "--model", "no-such-window-model", "--config", str(cfg)])
    assert res.exit_code == 0
    assert "context window is unknown" in res.output and "[context_windows]" in res.output


def test_split_text_goes_paragraph_then_sentence_then_word() -> None:
    paras = "\n\n".join(["one two three. four five six."] * 4)
    assert split_text(paras, 100) == [paras]
    assert all("\n\n" not in p for p in split_text(paras, 8))
    sentences = "Alpha beta gamma delta. " * 40
    pieces = split_text(sentences, 30)
    assert all(text_tokens(p) <= 30 for p in pieces) and all(p.endswith(".") for p in pieces)
    words = "word " * 200
    assert all(text_tokens(p) <= 10 for p in split_text(words, 10))
    assert all(text_tokens(p) <= 5 for p in split_text("x" * 100, 5))


def test_a_crash_resends_only_the_piece_in_flight(tmp_path: Path, sim_factory) -> None:
    import os
    import signal

    from .test_resume import run as run_cli
    from .test_resume import start, wait_for_lines

    sim = sim_factory(context_window=WINDOW, latency_ms=300)
    rows = [{"id": f"L{i}", "text": contract(i)} for i in range(2)]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    args = ["process", str(inp), "--base-url", sim.url, "--model", "gpt-4o-mini", "--config",
            str(config(tmp_path)), "--concurrency", "1", "--quiet"]
    proc = start(args)
    wait_for_lines(tmp_path / "in.results.jsonl.pieces", 2, proc)  # two pieces of L0 kept, the third in flight
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    done = run_cli(args)
    assert done.returncode == 0, done.stderr
    out = read_results(tmp_path / "in.results.jsonl")
    assert sorted(r["custom_id"] for r in out) == ["L0", "L1"] and all(r["error"] is None for r in out)
    pieces = sum(r["batchrun"]["chunks"] for r in out)
    assert sim.stats.billed <= pieces + 1  # one request was in flight (concurrency 1)
    assert max(sim.stats.billed_by_prompt.values()) <= 2
    assert not (tmp_path / "in.results.jsonl.pieces").exists()  # complete: nothing left to keep
    first = next(r for r in out if r["custom_id"] == "L0")
    chunks = first["response"]["body"]["chunks"]
    assert first["batchrun"]["input_tokens"] == sum(c["usage"]["prompt_tokens"] for c in chunks)
