"""Usage mistakes a new user makes, refused with one sentence and exit 2 before anything is sent:
a template field that looks inside a value or converts it, and `status` on a missing input or a
directory (with `--json`, the error is JSON on stdout too). Real subprocesses, real servers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from batchrun.cli import app
from batchrun.errors import ConfigError
from batchrun.input.template import check_template, template_fields

from .conftest import write_jsonl
from .test_input_checks import Recorder, recorder  # noqa: F401 (the fixture, used by name)
from .test_resume import run

RECORDS = [{"id": "a", "text": "the parcel is late", "n": 7, "tags": ["late", "parcel"]}]


def one_sentence(text: str) -> str:
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1, text
    return text


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("Classify: {text.upper}", "{text.upper} looks up an attribute of the field 'text'"),
        ("Tag: {tags[0]}", "{tags[0]} indexes into the field 'tags'"),
        ("Classify: {text!r}", "{text!r} has a conversion, which would send Python's repr"),
    ],
)
def test_process_refuses_lookups_and_conversions_before_sending(
    tmp_path: Path, recorder: Recorder, template: str, says: str  # noqa: F811
) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", RECORDS)
    res = run(["process", str(inp), "--base-url", recorder.url, "--model", "m", "--quiet", "--template", template])
    assert res.returncode == 2, res.stderr
    assert says in one_sentence(res.stderr) and "name the field alone" in res.stderr
    assert recorder.bodies == [] and not (tmp_path / "in.results.jsonl").exists()


def test_a_format_spec_is_kept_and_sends_the_padded_value(tmp_path: Path, recorder: Recorder) -> None:  # noqa: F811
    inp = write_jsonl(tmp_path / "in.jsonl", RECORDS)
    res = run(["process", str(inp), "--base-url", recorder.url, "--model", "m", "--quiet",
               "--template", "#{n:>3} {text:.10}"])
    assert res.returncode == 0, res.stderr
    assert [b["messages"][-1]["content"] for b in recorder.bodies] == ["#  7 the parcel"]


@pytest.mark.parametrize(
    ("template", "ok"),
    [("{text}", True), ("{n:>5}", True), ("{text:>{n}}", True), ("{text:>{n.real}}", False),
     ("{text!s}", False), ("{text!a}", False), ("{0.x}", False), ("{text[tags]}", False)],
)
def test_template_fields_allow_names_and_format_specs_only(template: str, ok: bool) -> None:
    if ok:
        check_template(template, RECORDS[0])
        return
    with pytest.raises(ConfigError):
        template_fields(template)  # refused from the text alone, whatever the input holds


def test_a_json_example_with_a_dotted_key_still_reads_as_a_literal_brace() -> None:
    with pytest.raises(ConfigError, match=r"names the field '\"a.b\"'.*literal braces are written"):
        check_template('Reply like {"a.b": 1}: {text}', RECORDS[0], 1)


def status_json(args: list[str]) -> tuple[Any, str, int]:
    res = run(["status", *args, "--json"])
    return json.loads(res.stdout), res.stderr, res.returncode


def test_status_json_on_a_missing_input_prints_a_json_error(tmp_path: Path) -> None:
    data, err, code = status_json([str(tmp_path / "nope.jsonl")])
    assert code == 2 and list(data) == ["error"]
    assert "nope.jsonl does not exist" in data["error"]
    assert one_sentence(err) == f"batchrun: {data['error']}\n"


def test_status_on_a_directory_says_it_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    res = run(["status", str(tmp_path / "jobs")])
    assert res.returncode == 2 and res.stdout == ""
    assert "is a directory, not a file" in one_sentence(res.stderr) and "does not exist" not in res.stderr
    data, _err, code = status_json([str(tmp_path / "jobs")])
    assert code == 2 and "is a directory" in data["error"]


@pytest.mark.parametrize("flag", ["--summary-json", "--log-file", "--html-report"])
@pytest.mark.parametrize("which", ["input", "results", "checkpoint"])
def test_no_output_option_may_name_a_file_of_the_job(tmp_path: Path, flag: str, which: str) -> None:
    inp = tmp_path / "t.jsonl"
    inp.write_text('{"id": "1", "text": "hi"}\n')
    # in-process: what is checked is the refusal, not the process around it
    first = CliRunner().invoke(app, ["process", str(inp), "--simulate", "--quiet"])
    assert first.exit_code == 0, first.output
    target = {"input": inp, "results": tmp_path / "t.results.jsonl",
              "checkpoint": tmp_path / "t.results.jsonl.checkpoint"}[which]
    before = target.read_bytes()
    done = CliRunner().invoke(app, ["process", str(inp), "--simulate", "--quiet", flag, str(target)])
    assert done.exit_code == 2 and "of this job" in done.stderr, done.output
    assert isinstance(done.exception, SystemExit)  # a sentence and an exit code, no traceback
    assert target.read_bytes() == before


def test_option_text_that_is_not_utf8_is_one_sentence(tmp_path: Path) -> None:
    inp = tmp_path / "t.jsonl"
    inp.write_text('{"id": "1", "text": "hi"}\n')
    done = subprocess.run([sys.executable, "-m", "batchrun", "process", str(inp), "--simulate",
                           "--template", b"Classify \xe9: {text}"], capture_output=True, timeout=60)
    assert done.returncode == 2 and b"--template holds bytes that are not UTF-8" in done.stderr
    assert not (tmp_path / "t.results.jsonl").exists()


def test_a_file_where_no_record_names_a_model_needs_model(tmp_path: Path) -> None:
    inp = tmp_path / "t.jsonl"
    inp.write_text('{"id": "1", "text": "hi"}\n{"id": "2", "text": "there"}\n')
    done = run(["process", str(inp), "--base-url", "http://127.0.0.1:9/v1", "--quiet"])
    assert done.returncode == 2 and "no --model was given" in done.stderr, done.stderr
    assert not (tmp_path / "t.results.jsonl").exists()
    inp.write_text('{"id": "1", "text": "hi"}\n{"id": "2", "text": "there", "model": "m"}\n')
    mixed = run(["process", str(inp), "--simulate", "--quiet", "--model", "gpt-4o-mini"])
    assert mixed.returncode == 0, mixed.stderr


def test_report_and_export_never_write_over_the_jobs_checkpoint(tmp_path: Path) -> None:
    inp = tmp_path / "t.jsonl"
    inp.write_text('{"id": "1", "text": "hi"}\n')
    assert run(["process", str(inp), "--simulate", "--quiet"]).returncode == 0
    results, checkpoint = tmp_path / "t.results.jsonl", tmp_path / "t.results.jsonl.checkpoint"
    before = checkpoint.read_bytes()
    for args in (["report", str(results), "--html", str(checkpoint)],
                 ["export", str(results), "--input", str(inp), "-o", str(checkpoint), "--format", "csv"]):
        done = run(args)
        assert done.returncode == 2 and "of this job" in done.stderr, (args, done.stderr)
    assert checkpoint.read_bytes() == before


def test_a_base_url_with_a_query_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    inp = tmp_path / "t.jsonl"
    inp.write_text('{"id": "1", "text": "hi"}\n')
    done = run(["process", str(inp), "--base-url", "https://user:SECRET@x.example/openai?api-version=1",
                "--model", "m", "--quiet"])
    assert done.returncode == 2 and "without a query" in done.stderr, done.stderr
    assert "SECRET" not in done.stderr and not (tmp_path / "t.results.jsonl").exists()
    (tmp_path / "b.toml").write_text('[providers.az]\nbase_url = "https://x.example/v1#frag"\n')
    conf = run(["process", str(inp), "--config", str(tmp_path / "b.toml"), "--model", "az/m", "--quiet"])
    assert conf.returncode == 2 and "base_url must be an http(s) URL without a query" in conf.stderr, conf.stderr


def test_a_base_url_whose_port_is_not_a_number_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    inp = tmp_path / "t.jsonl"
    inp.write_text('{"id": "1", "text": "hi"}\n')
    done = run(["process", str(inp), "--base-url", "http://127.0.0.1:port/v1", "--model", "m", "--quiet"])
    assert done.returncode == 2 and "invalid base-url" in done.stderr, done.stderr
    assert not (tmp_path / "t.results.jsonl").exists()
