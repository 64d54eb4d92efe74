"""One run of a `process` job: take the lock, load or start the checkpoint, run the pipeline,
save the state and summary, and pick the exit code."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

import orjson

from batchrun.account.pricing import PriceBook
from batchrun.account.stats import summary
from batchrun.clock import now_iso
from batchrun.config import RunConfig
from batchrun.errors import InputError, JobError
from batchrun.input.lines import line_batches
from batchrun.limit.budget import Budget
from batchrun.limit.limiter import Limiters
from batchrun.run.connect import endpoint
from batchrun.run.pipeline import AUTH, BUDGET, INTERRUPTED, TERMINATED, Pipeline
from batchrun.send.client import Client, make_session
from batchrun.send.retry import RetryPolicy
from batchrun.send.sender import Sender
from batchrun.show.console import Display
from batchrun.show.progress import Limit, Snapshot
from batchrun.store.identity import fingerprint
from batchrun.store.lock import JobLock, lock_path
from batchrun.store.recovery import rebuild_from_output, recover_output
from batchrun.store.state import JobState, checkpoint_path, load_state, save_atomic

EXIT_OK, EXIT_SOME_FAILED, EXIT_STOPPED = 0, 1, 3

EXIT_BY_STOP = {INTERRUPTED: 130, TERMINATED: 143, BUDGET: EXIT_STOPPED, AUTH: EXIT_STOPPED}


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended."""

    exit_code: int
    summary: dict[str, Any]


def _changed(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def prepare_state(cfg: RunConfig, display: Display) -> JobState:
    """Load the checkpoint and check the job is the same, or start a new one."""
    if not cfg.input.is_file():
        raise InputError(f"input file {cfg.input} does not exist or is not a file")
    try:
        fp, lines = fingerprint(cfg.input)
    except OSError as e:
        raise InputError(f"cannot read input file {cfg.input}: {e.strerror or e}") from None
    identity = cfg.identity()
    ck = checkpoint_path(cfg.output)
    state = None if cfg.fresh else load_state(ck)
    if cfg.fresh:
        out = cfg.output
        if out.exists() and out.stat().st_size > 0:  # results are never deleted silently
            aside = out.with_name(f"{out.name}.{time.strftime('%Y%m%dT%H%M%S')}.old")
            os.replace(out, aside)
            display.notice(f"--fresh: moved the old output {out} aside to {aside}")
        ck.unlink(missing_ok=True)  # only an index into that output
    if state is None:
        if cfg.output.exists() and cfg.output.stat().st_size > 0:
            raise JobError(
                f"output {cfg.output} already exists but has no batchrun checkpoint; "
                "pass --fresh to move it aside and start over, or -o to write elsewhere"
            )
        state = JobState(input_fingerprint=fp, identity=identity)
    else:
        if state.input_fingerprint != fp:
            raise JobError(
                f"input {cfg.input} changed since this job started; to resume, restore it, "
                "or pass --fresh to start over (the old output is kept)"
            )
        changed = _changed(state.identity, identity)
        if changed:
            raise JobError(
                f"request-shaping option(s) {', '.join(changed)} differ from the run that started "
                "this job; rerun with the same options, or pass --fresh to start over"
            )
        if cfg.retry_failed:
            dropped = rebuild_from_output(cfg.output, state, drop_failed=True)
            display.notice(f"--retry-failed: {dropped} failed record(s) will be sent again")
        else:
            n = recover_output(cfg.output, state)
            if n:
                display.notice(f"resume: {n} result line(s) written after the last checkpoint recovered")
        display.notice(
            f"resuming: {state.stats.done} record(s) already done in {state.runs} earlier run(s)"
        )
    state.total = lines
    state.runs += 1
    state.last_run = {"status": "running", "started": now_iso(), "pid": os.getpid()}
    try:
        cfg.output.parent.mkdir(parents=True, exist_ok=True)
        cfg.output.touch()
        save_atomic(ck, state.to_bytes())
    except OSError as e:
        raise JobError(f"cannot write the output {cfg.output} or its checkpoint: {e.strerror or e}") from None
    return state


async def run_job(cfg: RunConfig, display: Display) -> Outcome:
    """Run the job to its end or a clean stop."""
    lock = JobLock(lock_path(cfg.output))
    lock.acquire()
    try:
        if lock.stale_pid is not None:
            display.notice(f"took over a stale lock left by PID {lock.stale_pid}, which is not running")
        state = prepare_state(cfg, display)
        return await _run(cfg, state, display)
    finally:
        lock.release()


async def _run(cfg: RunConfig, state: JobState, display: Display) -> Outcome:
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    ck = checkpoint_path(cfg.output)
    elapsed_before = state.elapsed_s
    prices = PriceBook(cfg.prices, None if cfg.simulate else cfg.base_url,
                       context_windows=dict(cfg.context_windows))

    def state_bytes() -> bytes:
        state.elapsed_s = elapsed_before + time.monotonic() - started
        return state.to_bytes()

    parser = cfg.parser()
    # Look prices up before the first request: loading the snapshot takes a moment.
    for model in (cfg.model, *cfg.fallback_models):
        if model:
            if await asyncio.to_thread(prices.price, model) is None and cfg.max_cost is not None:
                display.warn(f"--max-cost cannot cap model {model!r}: its price is unknown (add it with --prices)")
            await asyncio.to_thread(prices.context_window, model)
    async with endpoint(cfg) as (base_url, key), make_session(cfg.concurrency) as session:
        client = Client(session, base_url, key, cfg.timeout)
        limiters = Limiters(base_url, cfg.rpm, cfg.tpm)
        budget = Budget(cfg.max_cost, spent_usd=state.stats.cost_usd)
        sender = Sender(client, limiters, prices, budget, RetryPolicy(cfg.max_attempts, base_s=cfg.retry_base),
                        cfg.fallback_models)
        pipe = Pipeline(line_batches(cfg.input, cfg.max_line_bytes), parser, sender, state,
                        cfg.output, ck, state_bytes, cfg.concurrency, cfg.drain_timeout)
        done_before = state.stats.done

        def on_signal(reason: str) -> None:
            if pipe.stopped in (INTERRUPTED, TERMINATED):
                display.notice("second signal: stopping now without waiting for in-flight requests")
                pipe.stop_now()
                return
            display.notice(
                f"stopping: sending nothing new, finishing the requests in flight "
                f"(up to {cfg.drain_timeout:g}s; Ctrl-C again to stop at once)"
            )
            pipe.stop(reason)

        loop.add_signal_handler(signal.SIGINT, on_signal, INTERRUPTED)
        loop.add_signal_handler(signal.SIGTERM, on_signal, TERMINATED)

        def snapshot() -> Snapshot:
            st = state.stats
            el = time.monotonic() - started
            tin, tout = st.tokens
            lims = tuple(
                Limit(m, c.rpm, c.tpm, c.rpm_source or c.tpm_source or "")
                for m, c in ((m, lim.controller) for m, lim in limiters.by_model.items())
                if not c.unlimited
            )
            return Snapshot(
                done=st.done, total=state.total, elapsed_s=el,
                rps=(st.done - done_before) / el if el > 0 else 0.0,
                input_tokens=tin, output_tokens=tout, cost_usd=st.cost_usd,
                cost_unknown=any(m.unpriced for m in st.models.values()),
                retries=sender.retries, errors=st.failed + st.invalid, in_flight=pipe.in_flight,
                limits=lims, wait_s=limiters.waited_s, simulated=cfg.simulate,
            )

        async def tick() -> None:
            while True:
                await asyncio.sleep(display.interval_s)
                display.update(snapshot())

        display.start(state.total, cfg.simulate)
        ticker = asyncio.create_task(tick()) if display.mode != "quiet" else None
        try:
            await pipe.run()
        finally:
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            loop.remove_signal_handler(signal.SIGINT)
            loop.remove_signal_handler(signal.SIGTERM)
            if display.mode != "quiet":
                display.update(snapshot())
            display.stop()

    complete = pipe.stopped is None
    if complete:
        state.total = state.stats.done
    state.last_run = {**state.last_run, "status": "complete" if complete else f"stopped: {pipe.stopped}",
                      "ended": now_iso()}
    await asyncio.to_thread(save_atomic, ck, state_bytes())  # the output was fsynced by the pipeline
    wait_s = limiters.waited_s
    summ = summary(
        state.stats, input_path=str(cfg.input), output_path=str(cfg.output),
        total=state.total or state.stats.done, complete=complete, simulated=cfg.simulate,
        runs=state.runs, elapsed_s=state.elapsed_s, stopped=pipe.stopped, rate_limit_wait_s=wait_s,
    )
    for model in summ["unpriced_models"]:
        display.warn(f"no price is known for model {model!r}: its cost is shown as unknown "
                     "(add it with --prices)")
    if cfg.summary_json is not None:
        try:
            cfg.summary_json.write_bytes(orjson.dumps(summ, option=orjson.OPT_INDENT_2) + b"\n")
        except OSError as e:
            display.warn(f"cannot write --summary-json {cfg.summary_json}: {e.strerror or e}")
    display.summary(summ)
    if pipe.stopped == AUTH:
        display.warn(f"the API refused the key read from {cfg.api_key_env} ({pipe.stop_message}); "
                     "fix the key and rerun the same command to resume")
    elif pipe.stopped == BUDGET:
        display.warn(f"--max-cost ${cfg.max_cost:g} reached: spent ${state.stats.cost_usd:.6f}; "
                     "raise --max-cost and rerun the same command to go on")
    elif pipe.stopped is not None:
        display.notice(f"stopped cleanly after {state.stats.done} record(s); to resume, run the same "
                       f"command again: {shlex.join(['batchrun', *sys.argv[1:]])}")
    if pipe.stopped is not None:
        return Outcome(EXIT_BY_STOP[pipe.stopped], summ)
    return Outcome(EXIT_OK if state.stats.failed + state.stats.invalid == 0 else EXIT_SOME_FAILED, summ)

