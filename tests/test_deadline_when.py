"""`--deadline WHEN`: parsing without a clock, fixing it once in the checkpoint, bad values as one
sentence."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from batchrun.cli import app
from batchrun.errors import ConfigError
from batchrun.route.when import fix_deadline, parse_margin, parse_when
from batchrun.store.state import JobState

from .conftest import plain_records, write_jsonl

NOON = datetime(2026, 12, 6, 12, 0, tzinfo=UTC).timestamp()


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("text", "at"), [
    ("2026-12-08T08:00Z", utc("2026-12-08T08:00")),
    ("2026-12-08T08:00", utc("2026-12-08T08:00")),  # no zone: UTC
    ("2026-12-08 08:00+01:00", utc("2026-12-08T07:00")),
    ("2026-12-08T08:00 Europe/Paris", utc("2026-12-08T07:00")),
    ("08:00", utc("2026-12-07T08:00")),  # the next one: tomorrow, it is noon
    ("13:30", utc("2026-12-06T13:30")),  # the next one: today
    ("12:00", utc("2026-12-07T12:00")),  # now is not next
    ("08:00Z", utc("2026-12-07T08:00")),
    ("14:00+02:00", utc("2026-12-07T12:00")),
    ("13:00 Europe/Paris", utc("2026-12-07T12:00")),  # 13:00 in Paris is noon UTC: now, so tomorrow's
    ("8h", NOON + 8 * 3600),
    ("90m", NOON + 5400),
    ("75s", NOON + 75),
    ("1h30m", NOON + 5400),
    ("2d", NOON + 2 * 86400),
])
def test_when_is_a_time_or_a_duration(text: str, at: float) -> None:
    assert parse_when(text).at(NOON) == at


@pytest.mark.parametrize("text", ["", "tomorrow", "25:00", "08:61", "2026-12-08", "8x", "0s", "-5m",
                                  "08:00 Mars/Olympus", "2026-12-08T08:00Z Europe/Paris", "h"])
def test_bad_when_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_when(text)


@given(st.integers(0, 23), st.integers(0, 59), st.floats(0, 4e9))
def test_the_next_clock_time_is_within_a_day_ahead(h: int, m: int, now: float) -> None:
    at = parse_when(f"{h:02d}:{m:02d}").at(now)
    assert now < at <= now + 86400
    t = datetime.fromtimestamp(at, UTC)
    assert (t.hour, t.minute, t.second) == (h, m, 0)


def test_margin_is_a_share_or_a_duration() -> None:
    assert parse_margin("10%").of(1000) == 100
    assert parse_margin("5m").of(1000) == 300
    assert parse_margin("0").of(1000) == 0
    for bad in ("95%", "soon", "08:00"):
        with pytest.raises(ValueError):
            parse_margin(bad)


def test_the_first_run_fixes_the_deadline_and_reruns_keep_it() -> None:
    saved, note = fix_deadline(None, parse_when("8h"), NOON)
    assert saved == {"at": NOON + 8 * 3600, "given": "8h", "set_at": NOON} and note == ""
    # a cron rerun an hour later with the same line: the same deadline, not 8 h from now
    assert fix_deadline(saved, parse_when("8h"), NOON + 3600) == (saved, "")
    kept, note = fix_deadline(saved, parse_when("2h"), NOON + 3600)
    assert kept == saved and "stays 2026-12-06T20:00:00Z" in note and "--deadline 2h is ignored" in note
    assert fix_deadline(saved, None, NOON + 3600) == (saved, "")
    assert fix_deadline(None, None, NOON) == (None, "")
    with pytest.raises(ConfigError, match="already past"):
        fix_deadline(None, parse_when("2026-12-06T11:00Z"), NOON)


def test_the_deadline_survives_the_checkpoint_and_old_checkpoints_have_none() -> None:
    st_ = JobState(input_fingerprint={"size": 1}, identity={})
    st_.deadline = {"at": NOON, "given": "8h"}
    assert JobState.from_bytes(st_.to_bytes()).deadline == {"at": NOON, "given": "8h"}
    old = st_.to_bytes().replace(b',"deadline":{"at":' + str(NOON).encode() + b',"given":"8h"}', b"")
    assert b"deadline" not in old
    assert JobState.from_bytes(old).deadline is None


def test_a_bad_deadline_is_one_sentence_and_exit_2(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(2))
    runner = CliRunner()
    for args, needle in ((["--deadline", "soon"], "invalid deadline from --deadline: expected a time such as"),
                         (["--deadline", "8h", "--deadline-margin", "lots"], "invalid deadline-margin"),
                         (["--deadline-margin", "5m"], "--deadline-margin needs --deadline")):
        res = runner.invoke(app, ["process", str(inp), "--simulate", *args])
        assert res.exit_code == 2, res.output
        assert needle in res.output and "Traceback" not in res.output
        assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "in.results.jsonl").exists()
