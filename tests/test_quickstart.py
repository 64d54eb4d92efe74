"""The README's quick start, as written there: classify the sample tickets on the simulator,
export them with --parse-json, and the answers make sense."""

from __future__ import annotations

import csv
import io
import re
import shutil
from pathlib import Path

from typer.testing import CliRunner

from batchrun.cli import app
from batchrun.sim.classify import classification

README = Path(__file__).resolve().parent.parent / "README.md"
SAMPLES = Path(__file__).resolve().parent.parent / "samples"
# The sample inputs the quick start reads, by name: never whatever else a user left in samples/
# (the quick start itself writes samples/support_tickets.results.jsonl there).
SAMPLE_INPUTS = ("support_tickets.jsonl", "reviews_batch.jsonl")
CATEGORIES = {"billing", "shipping", "technical", "account", "feedback", "other"}


def quick_start_template() -> str:
    """The --template of the README's first `batchrun process` command."""
    text = README.read_text(encoding="utf-8")
    block = text[text.index("## Quick start"):]
    m = re.search(r"batchrun process samples/support_tickets\.jsonl --simulate[^\n]*\\\n\s*--template '([^']*)'",
                  block)
    assert m, "the quick start's first command classifies the sample tickets with a --template"
    return m[1]


def copy_sample_inputs(dest: Path, samples: Path = SAMPLES) -> None:
    for name in SAMPLE_INPUTS:
        shutil.copy(samples / name, dest / name)


def test_the_quick_start_copies_only_its_inputs_not_a_users_results(tmp_path: Path) -> None:
    samples, dest = tmp_path / "samples", tmp_path / "dest"
    samples.mkdir()
    dest.mkdir()
    for name in (*SAMPLE_INPUTS, "support_tickets.results.jsonl", "mine.jsonl"):
        (samples / name).write_text("{}\n")
    copy_sample_inputs(dest, samples)
    assert sorted(p.name for p in dest.iterdir()) == sorted(SAMPLE_INPUTS)


def test_the_quick_start_classifies_the_tickets_and_exports_category_and_urgency(tmp_path: Path) -> None:
    copy_sample_inputs(tmp_path)
    runner = CliRunner()
    inp = tmp_path / "support_tickets.jsonl"
    res = runner.invoke(app, ["process", str(inp), "--simulate", "--quiet", "--template", quick_start_template()],
                        env={"BATCHRUN_BASE_URL": None, "OPENAI_BASE_URL": None})  # type: ignore[dict-item]
    assert res.exit_code == 0, res.output  # the samples are clean lines
    res = runner.invoke(app, ["process", str(tmp_path / "reviews_batch.jsonl"), "--simulate", "--quiet"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "tickets.csv"
    res = runner.invoke(app, ["export", str(tmp_path / "support_tickets.results.jsonl"), "--input", str(inp),
                              "--parse-json", "-o", str(out)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"), newline="")))
    assert len(rows) == 300 and all(r["status"] == "ok" for r in rows)
    assert {r["answer.category"] for r in rows} <= CATEGORIES
    assert {r["answer.urgency"] for r in rows} == {"low", "medium", "high"}
    by_text = {r["text"]: (r["answer.category"], r["answer.urgency"]) for r in rows}
    assert by_text["Me cobraron dos veces la suscripción de este mes, solicito el reembolso."] == ("billing", "high")
    assert by_text["Great service, the replacement headphones came in two days. Thank you!"] == ("feedback", "low")
    assert by_text["El paquete figura como entregado pero no lo he recibido."] == ("shipping", "high")
    assert by_text["Password reset emails never arrive, I checked the spam folder too."][0] == "technical"


def test_classification_is_keyword_based_deterministic_and_only_when_json_is_asked() -> None:
    ask = 'Reply as JSON like {{"category": "billing"}}. Ticket: '.replace("{{", "{").replace("}}", "}")
    assert classification(ask + "Please refund my order") == '{"category":"billing"}'
    assert classification(ask + "Where is my parcel?") == '{"category":"shipping"}'
    assert classification(ask + "Hello there") == '{"category":"other"}'
    both = "Classify as JSON with category and urgency. Ticket: I was charged twice, refund ASAP"
    assert classification(both) == classification(both) == '{"category":"billing","urgency":"high"}'
    assert classification("Please refund my order", system="Answer in JSON: category, urgency") is not None
    assert classification("Classify: please refund my order") is None  # no JSON asked: a plain label
    assert classification("Reply in JSON. Ticket: my app is happy") == classification(
        "Reply in JSON. Ticket: my app is happy")
    assert classification("JSON category. Ticket: I am happy") == '{"category":"other"}'  # app not in happy


def test_the_sample_reviews_get_a_sentiment_that_fits_them(tmp_path: Path) -> None:
    """The simulator answers a sentiment prompt from the review's own words, so the Batch API
    sample reads sensibly offline."""
    from batchrun.sim.classify import classification

    system = "Classify the sentiment of the review as positive, negative or mixed. Answer with one word."
    assert classification("Stopped working after one week. Very disappointed.", system) == "negative"
    assert classification("Exactly as described, fast delivery.", system) == "positive"
    assert classification("Sound is clear, the microphone is mediocre.", system) == "mixed"
    assert classification("Parcel arrived on Tuesday.", "Sentiment: positive, negative or neutral?") == "neutral"
