"""The bounded pipeline: reader -> feed -> workers -> output file, with designed drain and cancel.

Structured concurrency: every task lives in one TaskGroup. A worker appends its record's line
before it takes the next record, so at most `concurrency` records are ever sent but not yet in
the output: that is the most a crash can make us send twice. A clean stop (signal, budget, bad
key) closes the feed, lets in-flight requests finish and be written, and saves the checkpoint.

Lines are appended by `store.output.ResultsFile` (one os.write on an O_APPEND descriptor, in the
worker); the fsync that makes a checkpoint safe runs off the event loop, every CHECKPOINT_EVERY_S.
The results file is the job's (opened and closed by the lifecycle): a Batch API job's live shards
write through the same one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from batchrun.errors import BatchrunError, NotSent, StopReason
from batchrun.input.shapes import LineParser
from batchrun.job.outcome import stop_reason
from batchrun.records import Record, Result
from batchrun.send.sender import Sender
from batchrun.store.output import ResultsFile
from batchrun.store.state import JobState

CHECKPOINT_EVERY_S = 2.0


class Feed:
    """A bounded hand-off from the reader to the workers.

    Unlike asyncio.Queue, the reader is woken once per half-buffer rather than once per record,
    and a worker taking from a non-empty feed never yields to the loop.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.buf: deque[Record] = deque()
        self.closed = False
        self._space = asyncio.Event()
        self._items = asyncio.Event()

    async def put(self, rec: Record) -> None:
        """Add a record, waiting while the feed is full."""
        while len(self.buf) >= self.size:
            self._space.clear()
            await self._space.wait()
        self.buf.append(rec)
        self._items.set()

    async def get(self) -> Record | None:
        """The next record, or None once the feed is closed and empty."""
        buf = self.buf
        while not buf:
            if self.closed:
                return None
            self._items.clear()
            await self._items.wait()
        rec = buf.popleft()
        if len(buf) <= self.size >> 1:
            self._space.set()
        return rec

    def close(self, discard: bool = False) -> None:
        """No more records; with discard, drop those not yet taken (never sent)."""
        self.closed = True
        if discard:
            self.buf.clear()
        self._items.set()


@dataclass(frozen=True, slots=True)
class PipelineStatistics:
    """How the pipeline is doing, for the live display."""

    in_flight: int  # records taken by a worker and not yet written


class Pipeline:
    """Runs the records of one job through the sender into the output file."""

    def __init__(
        self,
        batches: AsyncIterator[list[tuple[int, bytes | None]]],
        parser: LineParser,
        sender: Sender,
        state: JobState,
        results: ResultsFile,
        concurrency: int,
        drain_timeout_s: float = 30.0,
        send: Callable[[Record], Awaitable[Result]] | None = None,
        after_write: Callable[[Result], None] | None = None,
    ) -> None:
        self.batches = batches
        self.parser = parser
        self.sender = sender
        self.state = state
        self.results = results
        self.concurrency = concurrency
        self.drain_timeout_s = drain_timeout_s
        self.send = send or sender.send  # the shadow wraps it
        self.after_write = after_write  # the shadow's line follows its record's
        self.stopped: StopReason | None = None  # None: the whole input was read
        self.stop_message: str | None = None
        self.abandoned = False  # in-flight requests were left unanswered (a second signal)
        self.in_flight = 0
        self._feed = Feed(max(64, 2 * concurrency))
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._finished = asyncio.Event()
        self._wake = asyncio.Event()  # a checkpoint is due: finished, or a canary decision to keep

    def request_save(self) -> None:
        """Save a checkpoint now rather than at the next interval (a canary rollback)."""
        self._wake.set()

    def statistics(self) -> PipelineStatistics:
        """The pipeline's running figures."""
        return PipelineStatistics(self.in_flight)

    def stop(self, reason: StopReason, message: str | None = None) -> None:
        """Stop dispatching: nothing new is sent, in-flight requests finish and are written."""
        if self.stopped is None:
            self.stopped = reason
            self.stop_message = message
        if reason is StopReason.WRITE_FAILED and self.results.failed is None:
            self.results.failed = message  # nothing more is written this run: the records go again next run
        self._feed.close(discard=True)
        self.sender.stopping.set()
        self._stopping.set()

    def stop_now(self) -> None:
        """Second Ctrl-C: abandon in-flight requests; what is written stays consistent."""
        self.abandoned = True
        self.stop(self.stopped or StopReason.INTERRUPTED)
        for w in self._workers:
            w.cancel()

    async def run(self) -> None:
        """Read, send and write until the input ends or stop() is called; the output fsynced."""
        async with asyncio.TaskGroup() as tg:
            reader = tg.create_task(self._read())
            self._workers = [tg.create_task(self._work()) for _ in range(self.concurrency)]
            tg.create_task(self._checkpoints())
            tg.create_task(self._drain_deadline())
            await asyncio.wait(self._workers)
            reader.cancel()
            self._finished.set()
            self._wake.set()
            self._stopping.set()
        try:
            await self.results.sync_in_thread()
        except OSError as e:
            self.stop(StopReason.WRITE_FAILED, f"cannot write the output {self.results.output}: {e.strerror or e}")

    async def _drain_deadline(self) -> None:
        await self._stopping.wait()
        if self._finished.is_set():
            return
        pending = [w for w in self._workers if not w.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.drain_timeout_s)
            for w in late:  # past --drain-timeout: these records are sent again next run
                w.cancel()

    async def _checkpoints(self) -> None:
        while not self._finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), CHECKPOINT_EVERY_S)
            self._wake.clear()
            if self._finished.is_set():
                return
            try:
                await self.results.save_in_thread()
            except OSError as e:
                self.stop(StopReason.WRITE_FAILED, f"cannot write the checkpoint {self.results.checkpoint}: "
                                                   f"{e.strerror or e}")
                return

    async def _read(self) -> None:
        bits = self.state.done.bits
        nbits = len(bits) * 8
        parser = self.parser
        parse, key_only = parser.parse_line, parser.key_only
        feed = self._feed
        try:
            async for batch in self.batches:
                if feed.closed:
                    return
                for n, data in batch:
                    if n < nbits and bits[n >> 3] >> (n & 7) & 1:  # done in an earlier run
                        key_only(n, data)
                        continue
                    item = parse(n, data)
                    if type(item) is Record or isinstance(item, Record):  # the second: --chunk-long's
                        await feed.put(item)
                    elif not self._write(item):  # type: ignore[arg-type]
                        return
                del batch  # not held while the next batch is read
        finally:
            feed.close()
            # a stop leaves the reader mid-file: close it now, not whenever the generator is
            # collected (an unclosed input file, and its warning, after the loop has gone)
            aclose = getattr(self.batches, "aclose", None)
            if aclose is not None:
                await aclose()

    def _write(self, result: Result) -> bool:
        """Append the result's line; False (and the job stopping) when it cannot be written."""
        if self.results.append(result):
            return True
        self._write_failed()
        return False

    def _write_failed(self) -> None:
        self.stop(StopReason.WRITE_FAILED, self.results.failed)

    async def _work(self) -> None:
        feed, send, after, append = self._feed, self.send, self.after_write, self.results.append
        while True:
            rec = await feed.get()
            if rec is None:
                return
            self.in_flight += 1
            try:
                result = await send(rec)
            except NotSent:  # stopped while waiting on the limiter: the next run sends it
                return
            except BatchrunError as e:  # a stop of the whole job: the record is sent again by the next run
                if (reason := stop_reason(e)) is None:
                    raise
                self.stop(reason, e.message)
                return
            finally:
                self.in_flight -= 1
            if not append(result):  # the hot path: one call, one os.write
                self._write_failed()
            elif after is not None:
                after(result)

