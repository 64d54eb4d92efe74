"""reader: the three input shapes, key rules, and every bad-line kind."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchrun.errors import ConfigError
from batchrun.input.lines import RawLine, raw_lines
from batchrun.input.shapes import LineParser, Shaping, check_template_file, first_plain_record
from batchrun.input.template import check_template
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
    r = parse(b'{"text": "hola", "engine": "own-model", "model": "Corolla"}', Shaping(model="m", model_field="engine"),
              n=9)
    assert isinstance(r, Record)
    assert r.key == "line-9" and r.model == "own-model" and r.own_model
    assert r.body["messages"] == [{"role": "user", "content": "hola"}]
    r = parse(b'{"text": "hola", "model": "Corolla"}', n=9)  # a plain record's `model` is data
    assert isinstance(r, Record) and r.model == "m" and not r.own_model


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"id": 1, "text": ', "invalid JSON"),
        (b'{"id": 1, "text": "caf\xe9"}', "not valid UTF-8"),
        (b"[1, 2, 3]", "a JSON array, not an object"),
        (b'"just a string"', "a JSON string, not an object"),
        (b'{"id": 1, "body_text": "x"}', "no messages and no text field"),
        (b'{"messages": []}', "messages must be a non-empty list"),
        (b'{"custom_id": "x", "url": "/v1/moderations", "body": {"input": "a"}}', "not supported"),
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


def test_stream_true_is_sent_as_false_and_counted() -> None:
    p = LineParser(Shaping(model="m"))
    chat = p.parse(RawLine(1, b'{"id": "a", "stream": true, "stream_options": {"include_usage": true},'
                              b' "messages": [{"role": "user", "content": "hi"}]}'))
    batch = p.parse(RawLine(2, b'{"custom_id": "b", "method": "POST", "url": "/v1/chat/completions",'
                               b' "body": {"stream": true, "messages": [{"role": "user", "content": "hi"}]}}'))
    off = p.parse(RawLine(3, b'{"id": "c", "stream": false, "messages": [{"role": "user", "content": "hi"}]}'))
    assert isinstance(chat, Record) and isinstance(batch, Record) and isinstance(off, Record)
    assert chat.body["stream"] is False and "stream_options" not in chat.body
    assert batch.body["stream"] is False and off.body["stream"] is False
    assert p.streams_disabled == 2


@pytest.mark.parametrize("own", [b'"max_completion_tokens": 50', b'"max_tokens": 50'])
def test_max_tokens_flag_never_adds_a_second_cap(own: bytes) -> None:
    r = parse(b'{"messages": [{"role": "user", "content": "hi"}], ' + own + b"}", Shaping(model="m", max_tokens=9))
    assert isinstance(r, Record) and r.max_output_tokens == 50
    assert [k for k in r.body if k.startswith("max_")] == [own[1:own.index(b'"', 1)].decode()]
    r = parse(b'{"messages": [{"role": "user", "content": "hi"}]}', Shaping(model="m", max_tokens=9))
    assert isinstance(r, Record) and r.body["max_tokens"] == 9


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"custom_id": "", "text": "x"}', "empty custom_id"),
        (b'{"custom_id": "", "id": "ok", "text": "x"}', "empty custom_id"),
        (b'{"id": "", "text": "x"}', "empty id"),
        (b'{"id": "line-3", "text": "x"}', "'line-3' is kept for line 3"),
        (b'{"custom_id": "line-12", "messages": [{"role": "user", "content": "x"}]}', "kept for line 12"),
    ],
)
def test_unusable_own_keys_are_bad_lines(raw: bytes, reason: str) -> None:
    r = parse(raw, n=5)
    assert isinstance(r, Result) and r.key == "line-5" and reason in (r.error_message or "")


def test_a_line_may_carry_its_own_line_n_key_and_look_alikes_are_ordinary_keys() -> None:
    p = LineParser(Shaping(model="m"))
    got = [p.parse(RawLine(n, raw)) for n, raw in [
        (5, b'{"id": "line-5", "text": "x"}'), (6, b'{"id": "line-05", "text": "x"}'),
        (7, b'{"id": "line-0", "text": "x"}'), (8, b'{"id": "Line-2", "text": "x"}')]]
    assert [(type(g).__name__, g.key) for g in got] == [
        ("Record", "line-5"), ("Record", "line-05"), ("Record", "line-0"), ("Record", "Line-2")]


def test_key_only_skips_unusable_keys_and_still_guards_own_keys() -> None:
    p = LineParser(Shaping(model="m"))
    for n, raw in [(1, b'{"id": ""}'), (2, b'{"id": "line-9"}'), (3, b'{"id": "a"}'), (4, b'{"text": "x"}')]:
        p.key_only(n, raw)  # lines done in an earlier run
    assert len(p.seen) == 1
    dup = p.parse(RawLine(5, b'{"id": "a", "text": "x"}'))
    assert isinstance(dup, Result) and "duplicate key 'a'" in (dup.error_message or "")


_LINES = st.sampled_from([
    b'{"text": "x"}', b"{bad json", b'{"id": "", "text": "x"}', b'{"id": "a", "text": "x"}',
    b'{"id": "b", "text": "x"}', b'{"id": "a", "nothing": 1}',
    *(b'{"custom_id": "line-%d", "text": "x"}' % i for i in range(1, 8)),
])


@given(st.lists(_LINES, max_size=12))
def test_no_two_output_lines_share_a_key(lines: list[bytes]) -> None:
    p = LineParser(Shaping(model="m"))
    keys = [p.parse(RawLine(n, raw)).key for n, raw in enumerate(lines, 1)]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ('Reply as JSON like {"label": "billing"}. Ticket: {text}', "names the field '\"label\"'"),
        ("bad {x", "does not parse as a template (expected '}' before end of string)"),
        ("a } b {text}", "Single '}'"),
        ("{subject}: {text}", "names the field 'subject', which the first plain record (line 2) does not have"),
        ("{} {text}", "has a field without a name ({})"),
        ("{text!z}", "has a conversion, which str.format does not know"),
        ("{meta[lang]}", "indexes into the field 'meta'"),  # lookups and conversions send Python's text
        ("{text!r:>9}", "has a conversion, which would send Python's repr"),
        ("{text:>{width}}", "names the field 'width'"),
        ("{text:d}", "cannot be filled from the first plain record (line 2) (ValueError"),
    ],
)
def test_check_template_names_the_bad_field_and_how_to_write_braces(template: str, says: str) -> None:
    with pytest.raises(ConfigError) as e:
        check_template(template, {"id": "a", "text": "late parcel"}, line=2)
    assert says in e.value.message and e.value.message.endswith("literal braces are written {{ and }}")


def test_check_template_passes_good_templates() -> None:
    rec = {"id": "a", "text": "late", "meta": {"lang": "en"}, "tags": ["x"]}
    for t in ['Reply as JSON like {{"label": "billing"}}. Ticket: {text}', "{id} {text:>9}",
              "no fields at all"]:
        check_template(t, rec)
    check_template("{anything}", None)  # no plain record: only parsing counts
    with pytest.raises(ConfigError):
        check_template("{", None)


async def test_first_plain_record_skips_other_shapes_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    chat = {"id": "c", "messages": [{"role": "user", "content": "hi"}]}
    batch = {"custom_id": "b", "method": "POST", "url": "/v1/chat/completions", "body": chat}
    rows: list[object] = ["{bad", "[1]", chat, batch, {"id": "", "text": "empty key"},
                          {"id": "p", "subject": "s", "text": "t"}, {"id": "q"}]
    path.write_bytes(b"\n".join(orjson.dumps(r) if not isinstance(r, str) else r.encode() for r in rows))
    assert await first_plain_record(path) == (6, {"id": "p", "subject": "s", "text": "t"})
    await check_template_file("{subject}: {text}", path)
    await check_template_file(None, path)
    with pytest.raises(ConfigError, match="'topic', which the first plain record \\(line 6\\)"):
        await check_template_file("{topic}", path)
    only_chat = write_jsonl(tmp_path / "chat.jsonl", [chat])
    assert await first_plain_record(only_chat) is None
    await check_template_file("{topic}", only_chat)  # the template shapes nothing here


def test_a_keyset_reserved_for_a_files_lines_never_grows_and_keeps_what_it_had() -> None:
    from batchrun.input.keys import KeySet

    ks = KeySet(capacity=8)
    ks.add("before")
    ks.reserve(10_000)
    mask = ks.mask
    assert "before" in ks and mask + 1 >= 10_000 * 5 // 4
    for i in range(10_000 - 1):
        assert ks.add(f"k{i}")
    assert ks.mask == mask and not ks.add("before") and len(ks) == 10_000
