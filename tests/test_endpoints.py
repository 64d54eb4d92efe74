"""Each endpoint's shape, offline: which Batch API urls are taken, what a bad body is, how
`--endpoint` shapes plain records and chat bodies, usage readers, token estimates and caps, and
embedding models priced by input alone."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from batchrun.account.pricing import PriceBook
from batchrun.input.endpoints import CHAT, COMPLETIONS, EMBEDDINGS, ENDPOINTS, RESPONSES, for_batch_url
from batchrun.input.lines import RawLine
from batchrun.input.shapes import LineParser, Shaping
from batchrun.records import Record, Result, Usage


def parse(obj: Any, shaping: Shaping | None = None, n: int = 1) -> Record | Result:
    return LineParser(shaping or Shaping(model="m")).parse(RawLine(n, orjson.dumps(obj)))


def batch_line(url: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": "k", "method": "POST", "url": url, "body": {"model": "m", **body}}


@pytest.mark.parametrize(
    ("url", "name"),
    [("/v1/chat/completions", "chat"), ("/v1/embeddings", "embeddings"), ("/v1/completions", "completions"),
     ("/v1/responses", "responses"), ("/v1/completions/", "completions"), ("/chat/completions", "chat")],
)
def test_batch_urls_name_their_endpoint(url: str, name: str) -> None:
    found = for_batch_url(url)
    assert found is not None and found.name == name


def test_batch_lines_are_sent_as_they_are_to_their_endpoint() -> None:
    bodies = {
        "/v1/embeddings": {"input": ["one", "two"], "dimensions": 8},
        "/v1/completions": {"prompt": "Say hi", "max_tokens": 9, "temperature": 0},
        "/v1/responses": {"input": [{"role": "user", "content": "hi"}], "instructions": "be brief"},
    }
    for url, body in bodies.items():
        rec = parse(batch_line(url, body), Shaping(model="m", max_tokens=50))
        assert isinstance(rec, Record), rec
        assert rec.endpoint == url.rsplit("/", 1)[1]
        expected = {"model": "m", **body}
        if url == "/v1/responses":  # --max-tokens fills the cap that endpoint spells its way
            expected["max_output_tokens"] = 50
        assert rec.body == expected


@pytest.mark.parametrize(
    ("url", "body", "says"),
    [
        ("/v1/embeddings", {}, "input must be"),
        ("/v1/embeddings", {"input": ""}, "empty string"),
        ("/v1/embeddings", {"input": ["a", 1]}, "not a mix"),
        ("/v1/embeddings", {"input": [{"text": "a"}]}, "not a mix"),
        ("/v1/completions", {"messages": [{"role": "user", "content": "x"}]}, "prompt must be"),
        ("/v1/responses", {"messages": [{"role": "user", "content": "x"}]}, "input must be"),
        ("/v1/responses", {"input": ["hello"]}, "every input item must be an object"),
        ("/v1/chat/completions", {"input": "x"}, "messages must be"),
    ],
)
def test_a_bad_body_per_endpoint_is_an_invalid_line(url: str, body: dict[str, Any], says: str) -> None:
    r = parse(batch_line(url, body), n=7)
    assert isinstance(r, Result) and r.error_code == "invalid_input"
    assert r.error_message is not None and r.error_message.startswith("line 7: ") and says in r.error_message


def test_plain_records_take_the_endpoint() -> None:
    obj = {"id": "a", "text": "the parcel is late"}
    shaped = {name: parse(obj, Shaping(model="m", system="Be brief.", max_tokens=20, endpoint=name))
              for name in ENDPOINTS}
    assert all(isinstance(r, Record) and r.endpoint == name for name, r in shaped.items())
    assert shaped["embeddings"].body == {"input": "the parcel is late", "model": "m"}  # type: ignore[union-attr]
    assert shaped["completions"].body == {  # type: ignore[union-attr]
        "prompt": "the parcel is late", "model": "m", "max_tokens": 20}
    assert shaped["responses"].body == {  # type: ignore[union-attr]
        "input": "the parcel is late", "instructions": "Be brief.", "model": "m", "max_output_tokens": 20}
    assert shaped["chat"].body["messages"][0] == {"role": "system", "content": "Be brief."}  # type: ignore[union-attr]
    templated = parse(obj, Shaping(model="m", template="Ticket: {text}", endpoint="embeddings"))
    assert isinstance(templated, Record) and templated.body["input"] == "Ticket: the parcel is late"
    assert templated.max_output_tokens == 0


def test_chat_bodies_take_the_endpoint() -> None:
    chat = {"id": "c", "model": "m", "temperature": 0, "max_completion_tokens": 30,
            "messages": [{"role": "system", "content": "Label it."},
                         {"role": "user", "content": [{"type": "text", "text": "late parcel"}]}]}
    resp = parse(chat, Shaping(endpoint="responses"))
    assert isinstance(resp, Record)
    assert resp.body == {"model": "m", "temperature": 0, "max_output_tokens": 30,
                         "input": [{"role": "system", "content": "Label it."},
                                   {"role": "user", "content": [{"type": "input_text", "text": "late parcel"}]}]}
    emb = parse(chat, Shaping(endpoint="embeddings"))
    assert isinstance(emb, Record) and emb.body == {"model": "m", "input": "Label it.\n\nlate parcel"}
    comp = parse(chat, Shaping(endpoint="completions"))
    assert isinstance(comp, Record)
    assert comp.body == {"model": "m", "temperature": 0, "max_tokens": 30, "prompt": "Label it.\n\nlate parcel"}


def test_usage_of_each_answer_shape() -> None:
    assert EMBEDDINGS.usage({"data": [], "usage": {"prompt_tokens": 12, "total_tokens": 12}}) == Usage(12, 0, 0)
    assert EMBEDDINGS.usage({"data": [], "usage": {"total_tokens": 5}}) == Usage(5, 0, 0)
    assert COMPLETIONS.usage({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 6}}) == Usage(4, 6)
    answer = {"output": [], "usage": {"input_tokens": 40, "input_tokens_details": {"cached_tokens": 32},
                                      "output_tokens": 9, "output_tokens_details": {"reasoning_tokens": 3}}}
    assert RESPONSES.usage(answer) == Usage(40, 9, 32)
    for e in (EMBEDDINGS, COMPLETIONS, RESPONSES):
        assert e.usage({"id": "x"}) is None  # no usage: unmetered, never $0
    assert EMBEDDINGS.is_answer({"data": []}) and not EMBEDDINGS.is_answer({"choices": []})
    assert COMPLETIONS.is_answer({"choices": []}) and not COMPLETIONS.is_answer({"output": []})
    assert RESPONSES.is_answer({"output": []}) and not RESPONSES.is_answer({"choices": []})


def test_estimates_and_caps_per_endpoint() -> None:
    assert EMBEDDINGS.prompt_tokens({"input": ["abcd" * 10, [1, 2, 3]]}) == 13
    assert EMBEDDINGS.max_output_tokens({"input": "x", "max_tokens": 99}, 512) == 0
    assert not EMBEDDINGS.capped({"max_tokens": 5})
    assert COMPLETIONS.max_output_tokens({"prompt": "x"}, 512) == 512
    assert COMPLETIONS.max_output_tokens({"prompt": "x", "max_tokens": 7}, 512) == 7
    assert RESPONSES.max_output_tokens({"input": "x", "max_tokens": 7}, 512) == 512
    assert RESPONSES.max_output_tokens({"input": "x", "max_output_tokens": 7}, 512) == 7
    assert RESPONSES.capped({"max_output_tokens": 7}) and not RESPONSES.capped({"max_tokens": 7})
    # the same text costs the same estimate whether sent as chat or as Responses input
    chat = CHAT.prompt_tokens({"messages": [{"role": "user", "content": "hello there friend"}]})
    assert RESPONSES.prompt_tokens({"input": [{"role": "user", "content": "hello there friend"}]}) == chat
    assert RESPONSES.prompt_tokens({"input": "hello there friend"}) == chat


def test_embedding_models_are_priced_by_input_only() -> None:
    book = PriceBook()
    assert book.cost("text-embedding-3-small", Usage(1_000_000, 0)) == pytest.approx(0.02)
    assert book.describe("text-embedding-3-small")["output_per_mtok"] is None
    # output on an input-only price is unknown, not free
    assert book.cost("text-embedding-3-small", Usage(1_000, 10)) is None
    assert book.most("text-embedding-3-small", Usage(1_000, 10)) is None
