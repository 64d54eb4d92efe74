"""Option definitions shared by several commands: one spelling and one help text each."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

Opt = typer.Option


def Flag(*names: str, help: str, **kw: Any) -> Any:  # noqa: N802 (reads as the option kind it declares)
    """An on/off option: shown without a value in --help (typer would print `<bool>`)."""
    return typer.Option(*names, help=help, metavar=" ", **kw)


InputFile = Annotated[Path, typer.Argument(help="JSONL input file.", show_default=False)]
OutputFile = Annotated[
    Path | None, Opt("-o", "--output", help="Results file (default: INPUT stem + .results.jsonl).")
]
Model = Annotated[str | None, Opt(help="Model for records that name none.")]
Template = Annotated[str | None, Opt(help='User message for plain records, e.g. "Classify: {text}".')]
ModelField = Annotated[str | None, Opt(help="The plain records' field that names each one's model "
                                          "(a plain record's `model` field is data unless named here).")]
System = Annotated[str | None, Opt(help="System message for plain records.")]
EndpointName = Annotated[
    str | None, Opt("--endpoint", help="Where plain records and chat bodies go: chat, embeddings, completions, "
                    "responses (default: chat).")
]
MaxTokens = Annotated[int | None, Opt(help="max_tokens for requests that set none.")]
BaseUrl = Annotated[
    str | None, Opt(help="API base URL (env BATCHRUN_BASE_URL, OPENAI_BASE_URL; default OpenAI).")
]
ApiKeyEnv = Annotated[
    str | None,
    Opt(help="Read the API key from this env variable (default: BATCHRUN_API_KEY, else OPENAI_API_KEY)."),
]
Prices = Annotated[Path | None, Opt(help="TOML prices file (USD per million tokens), over the bundled snapshot.")]
Config = Annotated[Path | None, Opt(help="Config file (default: ./batchrun.toml if present).")]
Json = Annotated[bool, Flag("--json", help="Print JSON.")]
Simulate = Annotated[bool, Flag("--simulate", help="Use the built-in simulator instead of a real API.")]
Compare = Annotated[str | None, Opt(help="Also price the same tokens on these models: A,B,...")]
