"""config and CLI usage errors: precedence, one-sentence errors, exit 2, nothing sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from batchrun.cli import app
from batchrun.config import resolve
from batchrun.errors import ConfigError

from .conftest import plain_records, write_jsonl


def flags(tmp_path: Path, **kw: object) -> dict[str, object]:
    return {"input": tmp_path / "in.jsonl", **kw}


def test_precedence_flags_over_env_over_file_over_defaults(tmp_path: Path) -> None:
    cfgfile = tmp_path / "batchrun.toml"
    cfgfile.write_text('concurrency = 7\nrpm = 100\ntimeout = 9\nmodel = "file-model"\n'
                       '[prices.models."x"]\ninput = 1\noutput = 2\n[aliases]\ngpt-4 = "gpt-4.1"\n')
    env = {"BATCHRUN_API_KEY": "k", "BATCHRUN_RPM": "200", "BATCHRUN_TIMEOUT": "11"}
    cfg = resolve(flags(tmp_path, timeout=13.0), env, cfgfile)
    assert cfg.concurrency == 7  # file
    assert cfg.rpm == 200  # env over file
    assert cfg.timeout == 13.0  # flag over env
    assert cfg.model == "file-model"
    assert cfg.max_attempts == 6  # default
    assert "x" in cfg.prices and cfg.aliases == (("gpt-4", "gpt-4.1"),)
    assert cfg.output == tmp_path / "in.results.jsonl"


def test_base_url_env_order(tmp_path: Path) -> None:
    env = {"BATCHRUN_API_KEY": "k", "OPENAI_BASE_URL": "http://a.example/v1"}
    assert resolve(flags(tmp_path), env).base_url == "http://a.example/v1"
    env["BATCHRUN_BASE_URL"] = "http://b.example/v1"
    assert resolve(flags(tmp_path), env).base_url == "http://b.example/v1"


def test_key_env_order_and_override(tmp_path: Path) -> None:
    cfg = resolve(flags(tmp_path), {"OPENAI_API_KEY": "o", "BATCHRUN_API_KEY": "b"})
    assert cfg.api_key.reveal() == "b"
    cfg = resolve(flags(tmp_path, api_key_env="MY_KEY"), {"MY_KEY": "m", "BATCHRUN_API_KEY": "b"})
    assert cfg.api_key.reveal() == "m" and cfg.api_key_env == "MY_KEY"


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        ({"env": {"BATCHRUN_CONCURRENCY": "lots"}}, "invalid concurrency from environment BATCHRUN_CONCURRENCY"),
        ({"file": "concurrency = 0\n"}, "invalid concurrency from config file"),
        ({"file": "max-cost = -1\n"}, "invalid max-cost from config file"),
        ({"file": "colour = 1\n"}, "unknown option 'colour'"),
        ({"file": "concurrency = \n"}, "is not valid TOML"),
        ({"flags": {"base_url": "ftp://x"}}, "invalid base-url from --base-url"),
        ({"env": {"BATCHRUN_API_KEY": ""}}, "no API key: set BATCHRUN_API_KEY or OPENAI_API_KEY"),
    ],
)
def test_bad_values_are_one_sentence(tmp_path: Path, setup: dict, needle: str) -> None:
    env = {"BATCHRUN_API_KEY": "k", **setup.get("env", {})}
    cfgfile = None
    if "file" in setup:
        cfgfile = tmp_path / "c.toml"
        cfgfile.write_text(setup["file"])
    with pytest.raises(ConfigError) as info:
        resolve(flags(tmp_path, **setup.get("flags", {})), env, cfgfile)
    assert needle in info.value.message
    assert "\n" not in info.value.message


def test_loopback_base_url_needs_no_key(tmp_path: Path) -> None:
    cfg = resolve(flags(tmp_path, base_url="http://127.0.0.1:11434/v1"), {})
    assert cfg.api_key.reveal() is None


def test_cli_usage_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(2))
    runner = CliRunner()
    env = {"BATCHRUN_API_KEY": None, "OPENAI_API_KEY": None}
    res = runner.invoke(app, ["process", str(inp), "--model", "m"], env=env)
    assert res.exit_code == 2
    assert res.output.strip().startswith("batchrun: no API key")
    assert "Traceback" not in res.output
    res = runner.invoke(app, ["process", str(inp), "--concurrency", "0", "--simulate"])
    assert res.exit_code == 2 and "invalid concurrency from --concurrency" in res.output
    res = runner.invoke(app, ["process", str(inp), "--no-such-flag"])
    assert res.exit_code == 2 and "No such option" in res.output
    res = runner.invoke(app, ["process", str(tmp_path / "missing.jsonl"), "--simulate"])
    assert res.exit_code == 2 and "does not exist" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["process", str(inp), "--simulate", "--prices", str(tmp_path / "nope.toml")])
    assert res.exit_code == 2 and "prices file" in res.output
    assert not (tmp_path / "in.results.jsonl").exists()


def test_unwritable_output_is_one_sentence(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(2))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = CliRunner().invoke(app, ["process", str(inp), "--simulate", "-o", str(blocker / "out.jsonl")])
    assert res.exit_code == 2 and f"{blocker} is not a directory" in res.output  # checked before anything is sent
    assert "Traceback" not in res.output
