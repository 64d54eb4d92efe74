"""Fail safe: an outage, an empty account or a stop signal never burns the job. Each case
against a real server on 127.0.0.1 or a real subprocess; no traceback for any of them."""

from __future__ import annotations

import json
import resource
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from .conftest import plain_records, read_results, serving, write_jsonl
from .test_resume import env, run, wait_for_lines


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_provider_down_stops_resumable_then_the_next_run_finishes_every_record_once(
    tmp_path: Path, sim_factory
) -> None:
    port = free_port()  # nothing listens here for the first run
    rows = plain_records(20)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "in.results.jsonl"
    args = ["process", str(inp), "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "m", "--quiet"]
    first = run(args)
    assert first.returncode == 75, first.stderr
    assert "Traceback" not in first.stderr and "resume later with: batchrun process" in first.stderr
    assert "error: " in first.stderr and "warning: cannot connect" not in first.stderr  # a stop, not a warning
    assert f"cannot connect to 127.0.0.1:{port} (connection refused)" in first.stderr  # not the library's text
    assert read_results(out) == []  # no record was marked failed for the outage
    status = json.loads(run(["status", str(inp), "--json"]).stdout)
    assert status["resumable"] is True and status["records"]["remaining"] == 20
    sim = sim_factory(port=port)  # the provider is back
    second = run(args)
    assert second.returncode == 0, second.stderr
    results = read_results(out)
    assert sorted(r["custom_id"] for r in results) == sorted(str(r["id"]) for r in rows)
    assert set(sim.stats.by_prompt.values()) == {1}


def test_out_of_quota_stops_with_exit_3_and_a_rerun_with_credit_finishes(tmp_path: Path, sim_factory) -> None:
    port = free_port()
    sim = sim_factory(port=port, quota=5, latency_ms=5)
    rows = plain_records(30)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "in.results.jsonl"
    args = ["process", str(inp), "--base-url", sim.url, "--model", "m", "--quiet", "--concurrency", "4"]
    first = run(args)
    assert first.returncode == 3, first.stderr
    assert "out of quota" in first.stderr and "Traceback" not in first.stderr
    assert sim.stats.requests <= sim.stats.ok + 4  # N answered, then at most the concurrency more
    assert all(r["error"] is None for r in read_results(out))  # nothing marked failed for it
    sim.close()
    sim2 = sim_factory(port=port)  # credit added: a fresh account on the same endpoint
    second = run(args)
    assert second.returncode == 0, second.stderr
    results = read_results(out)
    assert len(results) == 30 and len({r["custom_id"] for r in results}) == 30
    assert set(sim2.stats.by_prompt.values()) == {1}


def test_a_retry_after_longer_than_max_wait_stops_with_75(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(rpm=2, window="minute", headers=False, retry_after="seconds")
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(5))
    args = ["process", str(inp), "--base-url", sim.url, "--model", "m", "--quiet", "--max-wait", "0.5",
            "--concurrency", "1"]
    res = run(args)
    assert res.returncode == 75, res.stderr
    assert "--max-wait" in res.stderr and "Traceback" not in res.stderr
    assert all(r["error"] is None for r in read_results(tmp_path / "in.results.jsonl"))


def test_unwritable_paths_are_one_sentence_before_anything_is_sent(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(3))
    base = ["process", str(inp), "--base-url", sim.url, "--model", "m", "--quiet"]
    cases = [
        (["--log-file", "/nonexistent/dir/x.log"], "--log-file"),
        (["-o", "/dev/null"], "not a regular file"),
        (["-o", str(inp)], "names the input file"),
        (["--summary-json", str(tmp_path)], "not a regular file"),
        (["--fresh", "-o", str(tmp_path / "link.jsonl")], "names the input file"),
    ]
    (tmp_path / "link.jsonl").symlink_to(inp)
    for extra, words in cases:
        res = run([*base, *extra])
        assert res.returncode == 2, (extra, res.stderr)
        assert words in res.stderr and "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
    assert sim.stats.requests == 0
    assert inp.read_text().count("\n") == 3  # --fresh never moved the input away


def _limit_file_size(size: int) -> Any:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return apply


def test_disk_full_mid_run_stops_with_74_and_loses_nothing(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(latency_ms=5)
    rows = plain_records(200)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "in.results.jsonl"
    args = [sys.executable, "-m", "batchrun", "process", str(inp), "--base-url", sim.url, "--model", "m",
            "--quiet", "--concurrency", "8"]
    full = subprocess.run(args, env=env(), capture_output=True, text=True, timeout=60,
                          preexec_fn=_limit_file_size(40_000))  # the disk is full at 40 kB
    assert full.returncode == 74, full.stderr
    assert "Traceback" not in full.stderr and "cannot write the output" in full.stderr
    assert not (tmp_path / "in.results.jsonl.lock").exists()
    written = out.read_bytes()
    assert written.endswith(b"\n") and 0 < len(read_results(out)) < 200  # whole lines only
    again = run(["process", str(inp), "--base-url", sim.url, "--model", "m", "--quiet"])
    assert again.returncode == 0, again.stderr
    results = read_results(out)
    assert sorted(r["custom_id"] for r in results) == sorted(str(r["id"]) for r in rows)


def test_too_many_files_caps_the_concurrency_and_says_so(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(300))

    def few_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    args = [sys.executable, "-m", "batchrun", "process", str(inp), "--base-url", sim.url, "--model", "m",
            "--quiet", "--concurrency", "2000"]
    res = subprocess.run(args, env=env(), capture_output=True, text=True, timeout=60, preexec_fn=few_files)
    assert res.returncode == 0, res.stderr
    assert "Too many open files" not in res.stderr and "Traceback" not in res.stderr
    assert "running with --concurrency 192" in res.stderr
    assert len(read_results(tmp_path / "in.results.jsonl")) == 300


def test_credentials_in_the_base_url_are_never_written_or_printed(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(latency_ms=200)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(30))
    url = sim.url.replace("http://", "http://gateway:PASSWORD123@")
    log = tmp_path / "run.log"
    with_key = run(["process", str(inp), "--base-url", url, "--model", "m"])
    assert with_key.returncode == 2 and "***" in with_key.stderr  # one Authorization header only
    e = {k: v for k, v in env().items() if k not in ("BATCHRUN_API_KEY", "OPENAI_API_KEY")}
    proc = subprocess.Popen([sys.executable, "-m", "batchrun", "process", str(inp), "--base-url", url,
                             "--model", "m", "--log-file", str(log), "--concurrency", "2"],
                            env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_lines(tmp_path / "in.results.jsonl", 2, proc)
    proc.send_signal(signal.SIGTERM)  # the resume hint repeats the command line
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and "to resume" in err
    for text in (out, err, with_key.stderr, *(p.read_text(errors="replace") for p in tmp_path.iterdir())):
        assert "PASSWORD123" not in text


def test_a_key_typed_where_a_variable_name_belongs_is_not_echoed(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(2))
    res = run(["process", str(inp), "--model", "m", "--api-key-env", "sk-proj-abcdef0123456789"])
    assert res.returncode == 2 and "sk-proj" not in res.stderr and "environment variable" in res.stderr


def test_fresh_is_an_action_never_a_setting(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(2))
    (tmp_path / "batchrun.toml").write_text("fresh = true\n")
    res = subprocess.run([sys.executable, "-m", "batchrun", "process", str(inp), "--simulate"], cwd=tmp_path,
                         env=env(), capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "fresh is an action" in res.stderr
    (tmp_path / "batchrun.toml").unlink()
    res = subprocess.run([sys.executable, "-m", "batchrun", "process", str(inp), "--simulate"], cwd=tmp_path,
                         env=env(BATCHRUN_FRESH="1"), capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "BATCHRUN_FRESH" in res.stderr


def test_flags_read_as_flags_and_there_is_a_version() -> None:
    assert run(["--version"]).stdout.startswith("batchrun ")
    lines = run(["process", "--help"]).stdout.splitlines()
    for flag in ("--simulate", "--fresh", "--retry-failed", "--quiet"):
        line = next(x for x in lines if flag in x)
        assert "<bool>" not in line, line


def test_a_template_with_literal_braces_is_refused_before_anything_is_sent(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory()
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(5))
    bad = run(["process", str(inp), "--base-url", sim.url, "--model", "m", "--quiet",
               "--template", 'Reply as JSON like {"label": "billing"}. Ticket: {text}'])
    assert bad.returncode == 2 and "{{ and }}" in bad.stderr and "Traceback" not in bad.stderr
    assert sim.stats.requests == 0 and not (tmp_path / "in.results.jsonl.checkpoint").exists()
    good = run(["process", str(inp), "--base-url", sim.url, "--model", "m", "--quiet",
                "--template", 'Reply as JSON like {{"label": "billing"}}. Ticket: {text}'])
    assert good.returncode == 0, good.stderr  # fixing it needs no --fresh


def test_a_503_asking_to_wait_past_max_wait_stops_with_75(tmp_path: Path) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"error": {"code": "overloaded"}}, status=503, headers={"retry-after": "3600"})

    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(5))
    with serving(handler) as url:
        res = run(["process", str(inp), "--base-url", url, "--model", "m", "--quiet", "--max-wait", "60"])
    assert res.returncode == 75, res.stderr
    assert "3600" in res.stderr and read_results(tmp_path / "in.results.jsonl") == []


def test_status_says_what_to_do_next_and_quiet_still_logs_progress(tmp_path: Path, sim_factory) -> None:
    sim = sim_factory(error_rate=0.2, error_kinds=("500",), latency_ms=30, seed=4)
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(40))
    log = tmp_path / "cron.log"
    res = run(["process", str(inp), "--base-url", sim.url, "--model", "m", "--quiet", "--max-attempts", "1",
               "--log-file", str(log), "--progress-interval", "0.1"])
    assert res.returncode == 1
    assert " done" in log.read_text()  # progress lines reach the log with --quiet
    st = json.loads(run(["status", str(inp), "--json"]).stdout)
    assert "--retry-failed" in st["next"] and st["rate_limited"] == 0
    missing = run(["status", str(tmp_path / "nope.jsonl")])
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_a_one_record_job_against_a_dead_port_stops_resumable_and_marks_nothing_failed(tmp_path: Path) -> None:
    port = free_port()  # a mistyped port: nothing ever answers
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(1))
    done = run(["process", str(inp), "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "m", "--quiet",
                "--max-attempts", "2"])
    assert done.returncode == 75, done.stderr
    assert f"cannot connect to 127.0.0.1:{port} (connection refused)" in done.stderr
    assert read_results(tmp_path / "in.results.jsonl") == []  # the record goes again next run
