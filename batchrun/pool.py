"""The bounded pipeline: reader -> queue -> workers -> writer, with designed drain and cancel.

Structured concurrency: every task lives in one TaskGroup. A worker takes no new record until
its last result is written, so at most `concurrency` records are ever sent but not yet on disk:
that is the most a crash can make us send twice. A clean stop (signal, budget, bad key) stops
the reader, lets in-flight requests finish and be written, then closes the writer.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiofiles

from batchrun.checkpoint import JobState
from batchrun.errors import AuthError
from batchrun.reader import LineParser, RawLine
from batchrun.records import Record, Result, result_line
from batchrun.sender import BudgetReached, Sender

CHECKPOINT_EVERY_S = 2.0

# Why a run stopped early; None means it read the whole input.
INTERRUPTED, TERMINATED, BUDGET, AUTH = "interrupted", "terminated", "budget", "auth"


@dataclass(slots=True)
class _Item:
    result: Result
    written: asyncio.Future[None] | None


class Pipeline:
    """Runs the records of one job through the sender into the output file."""

    def __init__(
        self,
        lines: AsyncIterator[RawLine],
        parser: LineParser,
        sender: Sender,
        state: JobState,
        output: Path,
        concurrency: int,
        save_checkpoint: Callable[[], Awaitable[None]],
        drain_timeout_s: float = 30.0,
    ) -> None:
        self.lines = lines
        self.parser = parser
        self.sender = sender
        self.state = state
        self.output = output
        self.concurrency = concurrency
        self.save_checkpoint = save_checkpoint
        self.drain_timeout_s = drain_timeout_s
        self.stopped: str | None = None
        self.stop_message: str | None = None
        self.in_flight = 0
        self.skipped = 0  # lines done in an earlier run
        self._queue: asyncio.Queue[Record | None] = asyncio.Queue(maxsize=max(64, 2 * concurrency))
        self._out: asyncio.Queue[_Item | None] = asyncio.Queue(maxsize=4 * concurrency + 64)
        self._reader: asyncio.Task[None] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._stop_event = asyncio.Event()

    def stop(self, reason: str, message: str | None = None) -> None:
        """Stop dispatching: nothing new is sent, in-flight requests finish and are written."""
        if self.stopped is None:
            self.stopped = reason
            self.stop_message = message
        self._stop_event.set()

    def stop_now(self) -> None:
        """Second Ctrl-C: abandon in-flight requests; what is written stays consistent."""
        self.stop(self.stopped or INTERRUPTED)
        for w in self._workers:
            w.cancel()

    async def run(self) -> None:
        """Read, send and write until the input ends or stop() is called."""
        loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as tg:
            writer = tg.create_task(self._write())
            self._reader = tg.create_task(self._read())
            self._workers = [tg.create_task(self._work(loop)) for _ in range(self.concurrency)]
            tg.create_task(self._on_stop())
            await asyncio.wait(self._workers)
            self._reader.cancel()
            self._stop_event.set()
            await self._out.put(None)
            await writer

    async def _on_stop(self) -> None:
        await self._stop_event.wait()
        if self._reader is not None:
            self._reader.cancel()
        while not self._queue.empty():  # queued but never sent: the next run sends them
            self._queue.get_nowait()
        for _ in self._workers:
            self._queue.put_nowait(None)
        pending = [w for w in self._workers if not w.done()]
        if pending and self.stopped is not None:
            _, late = await asyncio.wait(pending, timeout=self.drain_timeout_s)
            for w in late:
                w.cancel()

    async def _read(self) -> None:
        done = self.state.done
        parser = self.parser
        try:
            async for raw in self.lines:
                if raw.number in done:
                    parser.key_only(raw)
                    self.skipped += 1
                    continue
                item = parser.parse(raw)
                if isinstance(item, Record):
                    await self._queue.put(item)
                else:
                    await self._out.put(_Item(item, None))
        finally:
            if not self._stop_event.is_set():
                for _ in range(self.concurrency):
                    await self._queue.put(None)

    async def _work(self, loop: asyncio.AbstractEventLoop) -> None:
        queue, out, send = self._queue, self._out, self.sender.send
        while True:
            rec = await queue.get()
            if rec is None or self.stopped is not None:
                return
            self.in_flight += 1
            try:
                result = await send(rec)
            except AuthError as e:
                self.stop(AUTH, e.message)
                return
            except BudgetReached as e:
                self.stop(BUDGET, e.message)
                return
            finally:
                self.in_flight -= 1
            written = loop.create_future()
            await out.put(_Item(result, written))
            await written

    async def _write(self) -> None:
        out, state = self._out, self.state
        last_save = time.monotonic()
        async with aiofiles.open(self.output, "ab", buffering=0) as f:
            while True:
                item = await out.get()
                batch = [item]
                while not out.empty():
                    batch.append(out.get_nowait())
                data = b"".join(result_line(i.result) for i in batch if i is not None)
                if data:
                    view = memoryview(data)
                    while view:  # an unbuffered write may take only part of it
                        n = await f.write(view)
                        view = view[n:]
                    state.output_offset += len(data)
                for i in batch:
                    if i is None:
                        continue
                    state.record(i.result)
                    if i.written is not None and not i.written.done():
                        i.written.set_result(None)
                if time.monotonic() - last_save >= CHECKPOINT_EVERY_S:
                    await asyncio.to_thread(os.fsync, f.fileno())
                    await self.save_checkpoint()
                    last_save = time.monotonic()
                if None in batch:
                    await asyncio.to_thread(os.fsync, f.fileno())
                    return
