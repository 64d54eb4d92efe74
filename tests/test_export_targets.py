"""`export -o` and `report --html` targets: special files written in place, symlinks followed,
paths that name no file refused before any work, SIGTERM leaving the target as it was."""

from __future__ import annotations

import csv
import io
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from batchrun.cli import app
from batchrun.records import Result, Usage
from batchrun.store.wire import result_line

from .conftest import write_jsonl


def cli(args: list[str]) -> Any:
    return CliRunner().invoke(app, args, catch_exceptions=False)


def _chat(text: str) -> dict[str, Any]:
    return {"choices": [{"message": {"role": "assistant", "content": text}}]}


def _result(key: str, line: int, text: str = "x") -> bytes:
    return result_line(Result(key=key, line=line, model="m", status_code=200, body=_chat(text), error_code=None,
                              error_message=None, attempts=1, usage=Usage(10, 5), cost_usd=0.00001), 1.0)


def _job(tmp_path: Path, n: int = 3) -> tuple[Path, Path]:
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": f"r{i}", "text": f"t{i}"} for i in range(n)])
    results = tmp_path / "in.results.jsonl"
    results.write_bytes(b"".join(_result(f"r{i}", i + 1) for i in range(n)))
    return inp, results


def _read_fifo(path: Path, into: list[bytes]) -> threading.Thread:
    def drain() -> None:
        with open(path, "rb") as f:
            into.append(f.read())

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    return t


def test_a_fifo_target_is_written_in_place_not_replaced(tmp_path: Path) -> None:
    inp, results = _job(tmp_path)
    for args in (["export", str(results), "-i", str(inp), "-o"], ["report", str(results), "--html"]):
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)
        got: list[bytes] = []
        reader = _read_fifo(fifo, got)
        res = cli([*args, str(fifo)])
        reader.join(10)
        assert res.exit_code == 0, res.output
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # still a FIFO, not a regular file
        assert not (tmp_path / "pipe.tmp").exists()
        assert got and (b"r2" in got[0] if args[0] == "export" else got[0].startswith(b"<!DOCTYPE html>"))
        fifo.unlink()


def test_a_symlink_target_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    inp, results = _job(tmp_path)
    (tmp_path / "real").mkdir()
    for args, name in ((["export", str(results), "-i", str(inp), "-o"], "out.csv"),
                       (["report", str(results), "--html"], "out.html")):
        real = tmp_path / "real" / name
        real.write_text("old")
        link = tmp_path / f"link-{name}"
        link.symlink_to(real)
        res = cli([*args, str(link)])
        assert res.exit_code == 0, res.output
        assert link.is_symlink() and os.readlink(link) == str(real)
        text = real.read_text(encoding="utf-8-sig")
        assert ('"r1"' in text) if name == "out.csv" else text.startswith("<!DOCTYPE html>")
        # the temporary file was made beside the real file and renamed over it: none left anywhere
        assert not list(tmp_path.rglob("*.tmp"))


def test_process_html_report_through_a_symlink_and_into_a_fifo(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "hi"}])
    real = tmp_path / "report.html"
    link = tmp_path / "link.html"
    link.symlink_to(real)
    res = cli(["process", str(inp), "--simulate", "--quiet", "--html-report", str(link)])
    assert res.exit_code == 0, res.output
    assert link.is_symlink() and real.read_text().startswith("<!DOCTYPE html>")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = _read_fifo(fifo, got)
    res = cli(["process", str(inp), "--simulate", "--quiet", "--html-report", str(fifo)])
    reader.join(10)
    assert res.exit_code == 0, res.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and got and got[0].startswith(b"<!DOCTYPE html>")


def _subprocess(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "batchrun", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_paths_that_name_no_file_are_one_sentence_exit_2_before_any_work(tmp_path: Path) -> None:
    inp, results = _job(tmp_path)
    (tmp_path / "somedir").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    for target in ("", ".", "/", "somedir"):
        for args in (["export", str(results), "-i", str(inp), "-o", target],
                     ["report", str(results), "--html", target]):
            res = _subprocess(args, tmp_path)
            assert res.returncode == 2, (args, res.stderr)
            assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    res = _subprocess(["export", str(results), "-i", str(inp), "-o", "a.xml"], tmp_path)
    assert res.returncode == 2 and "cannot tell the format" in res.stderr and "Traceback" not in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written anywhere
    res = _subprocess(["export", str(results), "-i", str(inp), "-o", "a.xml", "--format", "jsonl"], tmp_path)
    assert res.returncode == 0 and (tmp_path / "a.xml").read_text().startswith('{"key":"r0"')
    res = _subprocess(["export", str(results), "-i", str(inp), "-o", "plain"], tmp_path)
    assert res.returncode == 0 and (tmp_path / "plain").read_bytes().startswith(b'\xef\xbb\xbf"key"')


def _big_job(tmp_path: Path, n: int) -> tuple[Path, Path]:
    """n records and their results, written fast (one line template)."""
    inp, results = tmp_path / "big.jsonl", tmp_path / "big.results.jsonl"
    with open(inp, "w") as f:
        f.writelines(f'{{"id": "r{i}", "text": "ticket {i} about a late parcel"}}\n' for i in range(n))
    one = _result("KEY", 999_999_999).decode()
    with open(results, "w") as f:
        f.writelines(one.replace('"KEY"', f'"r{i}"').replace("999999999", str(i + 1)) for i in range(n))
    return inp, results


def test_sigterm_and_sigint_during_export_leave_no_temp_file(tmp_path: Path) -> None:
    inp, results = _big_job(tmp_path, 60_000)
    out = tmp_path / "out.csv"
    tmp = tmp_path / "out.csv.tmp"
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        proc = subprocess.Popen([sys.executable, "-m", "batchrun", "export", str(results), "-i", str(inp),
                                 "-o", str(out)], stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not tmp.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert tmp.exists(), "the export finished (or never started writing) before it could be signalled"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == code, err
        assert f"export interrupted; nothing was written to {out}" in err and "Traceback" not in err, err
        assert not tmp.exists() and not out.exists(), (sig, tmp.exists(), out.exists(), err)


def test_clashing_field_names_keep_the_header_unique_and_every_value(tmp_path: Path) -> None:
    """An export of an export: its rows carry every generated column as an input field."""
    rows = [{"key": f"k{i}", "id": f"r{i}", "line": 100 + i, "status": "ok", "model": "old", "answer": f"a{i}",
             "answer.category": f"c{i}", "input.status": f"is{i}", "input.status.2": f"is2{i}", "cost_usd": i}
            for i in range(3)]
    inp = write_jsonl(tmp_path / "exported.jsonl", rows)
    results = tmp_path / "exported.results.jsonl"
    results.write_bytes(b"".join(_result(f"r{i}", i + 1, '{"category": "new"}') for i in range(3)))
    for name in ("o.csv", "o.jsonl"):
        out = tmp_path / name
        res = cli(["export", str(results), "-i", str(inp), "--parse-json", "-o", str(out)])
        assert res.exit_code == 0, res.output
        if name.endswith(".csv"):
            table = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"), newline="")))
            header, body = table[0], table[1:]
            assert all(len(r) == len(header) for r in body)
            docs = [dict(zip(header, r, strict=True)) for r in body]
        else:
            docs = [__import__("json").loads(x) for x in out.read_text().splitlines()]
            header = list(docs[0])
            assert all(list(d) == header for d in docs)
        assert len(set(header)) == len(header), header
        for i, d in enumerate(docs):
            assert d["key"] == f"r{i}" and d["status"] == "ok" and d["answer.category"] == "new"
            assert str(d["input.key"]) == f"k{i}" and str(d["input.line"]) == str(100 + i)
            assert d["input.answer.category"] == f"c{i}" and d["input.answer"] == f"a{i}"
            # every input value survives, under some column of its own
            assert {f"is{i}", f"is2{i}", "old"} <= {str(v) for v in d.values()}


def test_results_of_another_input_are_refused(tmp_path: Path) -> None:
    inp, results = _job(tmp_path, 20)
    lines = inp.read_text().splitlines(keepends=True)
    shifted = tmp_path / "shifted.jsonl"
    shifted.write_text("".join(lines[:5] + lines[6:]))  # a line deleted mid-file
    out = tmp_path / "o.csv"
    for args in ([str(results), "-i", str(shifted)], [str(results), "-i", str(results)]):
        res = cli(["export", *args, "-o", str(out)])
        assert res.exit_code == 2, res.output
        assert "does not answer" in res.stderr or "is the results file" in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1 and not out.exists()
    edited = tmp_path / "edited.jsonl"  # one record's id changed: a warning, not a refusal
    edited.write_text("".join(lines[:5] + ['{"id": "renamed", "text": "t5"}\n'] + lines[6:]))
    res = cli(["export", str(results), "-i", str(edited), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "19 ok" in res.stderr and "1 missing" in res.stderr and "another key" in res.stderr


def test_an_empty_job_exports_a_header_and_its_report_is_refused(tmp_path: Path) -> None:
    inp = tmp_path / "empty.jsonl"
    inp.write_text("\n")
    res = cli(["process", str(inp), "--simulate", "--quiet"])
    assert res.exit_code == 0, res.output
    results = tmp_path / "empty.results.jsonl"
    out = tmp_path / "o.csv"
    res = cli(["export", str(results), "-i", str(inp), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_text(encoding="utf-8-sig").splitlines() == [
        '"key","line","status","model","answer","error_code","error_message","input_tokens","output_tokens",'
        '"cost_usd"']
    res = cli(["report", str(results)])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
    # a non-empty input with an empty results file is still refused
    full = write_jsonl(tmp_path / "full.jsonl", [{"id": "a", "text": "t"}])
    res = cli(["export", str(results), "-i", str(full)])
    assert res.exit_code == 2 and "holds no result lines" in res.stderr


def test_the_report_of_a_simulated_run_says_so(tmp_path: Path, sim_factory: Any) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": f"r{i}", "text": f"t{i}"} for i in range(3)])
    res = cli(["process", str(inp), "--simulate", "--quiet", "--html-report", str(tmp_path / "run.html")])
    assert res.exit_code == 0, res.output
    res = cli(["report", str(tmp_path / "in.results.jsonl"), "--html", str(tmp_path / "later.html"), "--json"])
    assert res.exit_code == 0, res.output
    assert '"simulated": true' in res.stdout and "SIMULATED" in res.stderr
    for page in ("run.html", "later.html"):
        text = (tmp_path / page).read_text()
        assert 'id="simulated"' in text and "<title>batchrun report [SIMULATED]" in text
    # a run against a server (here the simulator behind a URL, as a real endpoint) is not marked
    sim = sim_factory(latency_ms=1)
    real = write_jsonl(tmp_path / "real.jsonl", [{"id": "a", "text": "t"}])
    res = CliRunner().invoke(app, ["process", str(real), "--base-url", sim.url, "--model", "gpt-4o-mini", "--quiet",
                                   "--html-report", str(tmp_path / "real.html")],
                             env={"BATCHRUN_API_KEY": "sk-test-not-real"}, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "SIMULATED" not in (tmp_path / "real.html").read_text()
    res = cli(["report", str(tmp_path / "real.results.jsonl")])
    assert res.exit_code == 0 and "SIMULATED" not in res.output
