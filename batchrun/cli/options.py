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
Deadline = Annotated[str | None, Opt(
    help="Finish by WHEN (2026-12-08T08:00Z; 08:00, the next one; or 8h from the job's first run) at the lowest "
         "cost: the Batch API where it is fast enough, live where not.")]
DeadlineMargin = Annotated[str | None, Opt(
    help="--deadline: aim to finish this early (a share of the time left, 10%, or a duration, 5m; default: 10%).")]
BatchQueueTokens = Annotated[int | None, Opt(help="--batch-api: the provider's enqueued-token limit per model "
                                                 "(default: learned from its first refusal).")]
SharedLimits = Annotated[
    str | None, Opt(help="Share each key's limit with other processes through this Redis (redis://HOST:PORT/DB).")
]
SharedLimitsRequired = Annotated[
    bool, Flag("--shared-limits-required", help="Stop (exit 75) when the shared limits' Redis does not answer.")
]
PartOption = Annotated[str | None, Opt("--part", help="Process only part K of N of the input's lines (K/N, 1-based).")]
PartsOption = Annotated[
    int | None, Opt("--parts", help="In N parts, this one's index from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID.")
]
MaxWait = Annotated[
    float | None, Opt(help="Stop the job (exit 75) when the server asks to wait longer than this (seconds).")
]
BatchSize = Annotated[int | None, Opt(help="--batch-api: requests per batch at most (default: 50000).")]
BatchExpired = Annotated[
    str | None, Opt(help="--batch-api: unanswered lines of an expired batch: resubmit (default) or live.")
]
NoWait = Annotated[
    bool, Flag("--no-wait", help="--batch-api: submit, collect what is finished, exit 75 while batches run.")
]
NotifyUrl = Annotated[str | None, Opt(help="POST each job event (rollback, stop, budget share, complete) as "
                                      "JSON here; env BATCHRUN_NOTIFY_URL, [notify] url.")]
ChunkLong = Annotated[bool, Flag("--chunk-long", help="Answer a plain record over chunk_share (0.8) of its "
                                 "model's context window in pieces.")]
