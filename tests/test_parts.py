"""One job in parts (--part K/N): byte ranges aligned to line starts, whole-file line numbers,
own results files; export and report take the parts together; status names the part."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from batchrun.cli import app
from batchrun.errors import ConfigError
from batchrun.input.lines import line_batches
from batchrun.input.parts import Part, parse_part, part_from_env, part_of, span

from .conftest import read_results, write_jsonl


def numbered(path: Path, part: Part | None) -> list[tuple[int, bytes | None]]:
    async def read() -> list[tuple[int, bytes | None]]:
        bounds = span(path, part).bounds() if part else None
        return [x async for batch in line_batches(path, span=bounds) for x in batch]
    return asyncio.run(read())


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"x")), max_size=30).filter(
           lambda ls: not b"\n".join(ls).startswith(b"\x1f\x8b")),  # a file starting so is read as gzip
       trailing=st.booleans(), n=st.integers(1, 9))
def test_parts_are_disjoint_cover_every_line_and_keep_its_number(
        tmp_path_factory: Any, lines: list[bytes], trailing: bool, n: int) -> None:
    path = tmp_path_factory.mktemp("parts") / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + (b"\n" if trailing and lines else b""))
    whole = numbered(path, None)
    pieces = [numbered(path, Part(k, n)) for k in range(1, n + 1)]
    assert [x for p in pieces for x in p] == whole  # in order, none twice, none left out
    spans = [span(path, Part(k, n)) for k in range(1, n + 1)]
    assert spans[0].start == 0 and spans[-1].end == path.stat().st_size
    assert all(a.end == b.start for a, b in zip(spans, spans[1:], strict=False))


def test_a_part_starting_with_gzips_magic_bytes_is_read_as_plain_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n\x1f\x8b")  # plain: only the file's own first bytes can say gzip
    assert numbered(path, None) == [(2, b"\x1f\x8b")]
    assert [x for k in (1, 2) for x in numbered(path, Part(k, 2))] == [(2, b"\x1f\x8b")]


def test_a_part_reads_only_its_own_bytes(tmp_path: Path) -> None:
    # part 2's range starts inside a line that is not JSON: part 2 must not see it at all
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"id": "a"}\n' + b"x" * 100 + b"\n" + b'{"id": "b"}\n' * 20)
    got = numbered(path, Part(2, 2))
    assert got and all(data == b'{"id": "b"}' for _, data in got)
    assert got[0][0] > 2  # numbered as in the whole file


def test_part_values_and_the_schedulers_index() -> None:
    assert parse_part("3/8") == Part(3, 8)
    for bad in ("0/3", "4/3", "3", "a/b", "1/0"):
        with pytest.raises(ValueError):
            parse_part(bad)
    assert part_from_env(4, {"JOB_COMPLETION_INDEX": "0"}) == Part(1, 4)
    assert part_from_env(4, {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1"}) == Part(4, 4)
    with pytest.raises(ConfigError, match="JOB_COMPLETION_INDEX"):
        part_from_env(4, {})
    with pytest.raises(ConfigError, match="outside --parts 4"):
        part_from_env(4, {"JOB_COMPLETION_INDEX": "4"})


def test_bad_parts_are_one_sentence_exit_2(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [{"text": "a"}])
    for args, says in ((["--part", "5/4"], "expected K/N"), (["--parts", "4"], "JOB_COMPLETION_INDEX"),
                       (["--part", "1/2", "--batch-api"], "--batch-api splits")):
        res = cli("process", str(inp), "--simulate", *args, env={"JOB_COMPLETION_INDEX": None})  # type: ignore[dict-item]
        assert res.exit_code == 2 and says in res.output and "Traceback" not in res.output


def cli(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env={"BATCHRUN_RETRY_BASE": "0.01", **(env or {})},
                              catch_exceptions=False)


def test_parts_run_on_their_own_and_export_as_one_job(tmp_path: Path) -> None:
    rows: list[Any] = [{"text": f"review {i}: it broke after a week"} for i in range(30)]
    rows[7] = "not json"  # a bad line keeps its number in its part
    inp = write_jsonl(tmp_path / "big.jsonl", rows)
    outs = []
    for k in (1, 2, 3):
        env = {"JOB_COMPLETION_INDEX": str(k - 1)} if k == 2 else None
        part = ["--parts", "3"] if k == 2 else ["--part", f"{k}/3"]
        res = cli("process", str(inp), "--simulate", "--quiet", *part, env=env)
        assert res.exit_code == (1 if k == 1 else 0), res.output  # the bad line is in part 1
        outs.append(tmp_path / f"big.part-{k}-of-3.results.jsonl")
    lines = [sorted(r["batchrun"]["line"] for r in read_results(o)) for o in outs]
    assert sorted(n for part in lines for n in part) == list(range(1, 31))
    assert all(5 <= len(part) <= 15 for part in lines)
    keys = {r["custom_id"] for o in outs for r in read_results(o)}
    assert keys == {f"line-{n}" for n in range(1, 31)}

    res = cli("export", *map(str, outs), "--input", str(inp))
    table = list(csv.DictReader(io.StringIO(res.stdout.lstrip("\ufeff"))))
    assert [row["key"] for row in table] == [f"line-{n}" for n in range(1, 31)]
    assert [row["status"] for row in table].count("invalid") == 1 and "missing" not in res.stdout

    res = cli("report", *map(str, outs), "--json")
    assert json.loads(res.stdout)["records"]["total"] == 30

    res = cli("status", str(inp), "--part", "2/3")
    assert "(part 2 of 3)" in res.stdout and "complete" in res.stdout
    assert json.loads(cli("status", str(inp), "--part", "2/3", "--json").stdout)["input_unchanged"] is True
    res = cli("process", str(inp), "--simulate", "--quiet", "--part", "3/3")  # resumes: nothing left to send
    assert res.exit_code == 0 and "10/10" not in res.output and len(read_results(outs[2])) == len(lines[2])


def test_part_and_parts_together_are_one_sentence() -> None:
    with pytest.raises(ConfigError, match="--part 1/2 and --parts 2 both say which part"):
        part_of(Part(1, 2), 2, {"JOB_COMPLETION_INDEX": "1"})
    assert part_of(Part(1, 2), None, {}) == Part(1, 2) and part_of(None, None, {}) is None
