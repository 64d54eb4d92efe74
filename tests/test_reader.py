"""reader: the three input shapes, key rules, and every bad-line kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchrun.input.lines import RawLine, raw_lines
from batchrun.input.shapes import LineParser, Shaping
from batchrun.records import Record, Result

from .conftest import write_jsonl


def parse(obj: bytes, shaping: Shaping | None = None, n: int = 1) -> Record | Result:
    return LineParser(shaping or Shaping(model="m")).parse(RawLine(n, obj))


def test_batch_api_shape() -> None:
    r = parse(b'{"custom_id": "a1", "method": "POST", "url": "/v1/chat/completions",'
              b' "body": {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}}')
    assert isinstance(r, Record)
    assert (r.key, r.model, r.body["messages"][0]["content"]) == ("a1", "gpt-x", "hi")


def test_chat_body_shape_takes_model_flag_and_drops_custom_id() -> None:
    r = parse(b'{"custom_id": "c", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 7}')
    assert isinstance(r, Record)
    assert r.key == "c" and r.model == "m" and "custom_id" not in r.body
    assert r.max_output_tokens == 7


def test_plain_record_with_template_and_system() -> None:
    s = Shaping(model="m", template="Classify: {text} ({lang})", system="Be terse.")
    r = parse(b'{"id": 17, "text": "late parcel", "lang": "en"}', s)
    assert isinstance(r, Record)
    assert r.key == "17"
    assert r.body["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Classify: late parcel (en)"},
    ]


def test_plain_record_without_template_sends_text_and_own_model() -> None:
    r = parse(b'{"text": "hola", "model": "own-model"}', n=9)
    assert isinstance(r, Record)
    assert r.key == "line-9" and r.model == "own-model"
    assert r.body["messages"] == [{"role": "user", "content": "hola"}]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"id": 1, "text": ', "invalid JSON"),
        (b'{"id": 1, "text": "caf\xe9"}', "not valid UTF-8"),
        (b"[1, 2, 3]", "a JSON array, not an object"),
        (b'"just a string"', "a JSON string, not an object"),
        (b'{"id": 1, "body_text": "x"}', "no messages and no text field"),
        (b'{"messages": []}', "messages must be a non-empty list"),
        (b'{"custom_id": "x", "url": "/v1/embeddings", "body": {"input": "a"}}', "not supported"),
    ],
)
def test_bad_lines_become_invalid_results(raw: bytes, reason: str) -> None:
    r = parse(raw, n=5)
    assert isinstance(r, Result)
    assert r.key == "line-5" and r.error_code == "invalid_input"
    assert r.error_message is not None and r.error_message.startswith("line 5: ")
    assert reason in r.error_message


def test_missing_template_field_names_it() -> None:
    r = parse(b'{"id": "a", "text": "x"}', Shaping(model="m", template="{subject}: {text}"))
    assert isinstance(r, Result) and "'subject'" in (r.error_message or "")


def test_duplicate_key_is_a_bad_line_first_one_stays() -> None:
    p = LineParser(Shaping(model="m"))
    first = p.parse(RawLine(1, b'{"id": "dup", "text": "a"}'))
    second = p.parse(RawLine(2, b'{"id": "dup", "text": "b"}'))
    assert isinstance(first, Record)
    assert isinstance(second, Result) and "duplicate key 'dup'" in (second.error_message or "")


def test_no_model_anywhere_is_a_bad_line() -> None:
    r = parse(b'{"id": "a", "text": "x"}', Shaping())
    assert isinstance(r, Result) and "no model" in (r.error_message or "")


def test_alias_maps_model() -> None:
    r = parse(b'{"id": "a", "text": "x"}', Shaping(model="gpt-4", aliases=(("gpt-4", "gpt-4.1"),)))
    assert isinstance(r, Record) and r.model == "gpt-4.1" and r.body["model"] == "gpt-4.1"


async def test_raw_lines_numbers_skip_blanks_and_cut_long_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    long_line = b'{"text": "' + b"x" * 5000 + b'"}'
    path.write_bytes(b'{"a": 1}\r\n\n   \n' + long_line + b"\n" + b'{"b": 2}')
    got = [(r.number, r.too_long, r.data) async for r in raw_lines(path, max_line_bytes=1000)]
    assert got == [(1, False, b'{"a": 1}\r'), (4, True, b""), (5, False, b'{"b": 2}')]


async def test_raw_lines_across_chunk_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("batchrun.input.lines.CHUNK", 7)
    rows = [{"id": i, "text": "y" * (i * 3)} for i in range(1, 30)]
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    got = [r async for r in raw_lines(path)]
    assert [r.number for r in got] == list(range(1, 30))
    assert all(not r.too_long for r in got)


def test_keyset_matches_a_python_set() -> None:
    import random

    from batchrun.input.keys import KeySet

    rng = random.Random(4)
    ks, ref = KeySet(capacity=8), set()
    for _ in range(20_000):
        k = f"k{rng.randrange(12_000)}"
        assert ks.add(k) == (k not in ref)
        ref.add(k)
    assert len(ks) == len(ref) and all(k in ks for k in ref) and "absent" not in ks


async def test_utf8_byte_order_mark_is_not_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": "a", "text": "x"}\n{"id": "b", "text": "y"}\n')
    parser = LineParser(Shaping(model="m"))
    got = [parser.parse(r) async for r in raw_lines(path)]
    assert [type(g).__name__ for g in got] == ["Record", "Record"]
