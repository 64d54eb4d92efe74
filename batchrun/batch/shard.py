"""Records into batch input files on disk: one endpoint and one model per shard (providers
refuse a file that mixes them), at most `batch_size` requests and `max_bytes` each. Streamed:
a shard is written line by line and never held in memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

from batchrun.batch.plan import Shard, ShardFiles
from batchrun.input.endpoints import ENDPOINTS
from batchrun.records import Record

MAX_SHARD_BYTES = 200 * 1000 * 1000  # OpenAI's limit on a batch input file


def request_line(rec: Record, model: str | None = None) -> bytes:
    """The Batch API input line of a record: its key as custom_id, its body as it would be sent
    (`model`: the name the provider knows it by, where the record names it NAME/model)."""
    body = rec.body if model is None else {**rec.body, "model": model}
    return orjson.dumps({"custom_id": rec.key, "method": "POST", "url": ENDPOINTS[rec.endpoint].batch_url,
                         "body": body}) + b"\n"


class _Open:
    """A shard being written."""

    def __init__(self, shard: Shard, files: ShardFiles) -> None:
        self.shard = shard
        self.requests: BinaryIO = open(files.requests, "wb")  # noqa: SIM115 (closed by close())
        self.index: BinaryIO = open(files.index, "wb")  # noqa: SIM115

    def add(self, data: bytes, line: int, key: str, tokens: int, cap: int) -> None:
        self.requests.write(data)
        self.shard.tokens += tokens
        self.shard.out_cap += cap
        self.index.write(orjson.dumps([line, key]) + b"\n")
        self.shard.requests += 1
        self.shard.bytes += len(data)

    def close(self) -> Shard:
        for f in (self.requests, self.index):
            f.flush()
            os.fsync(f.fileno())  # the checkpoint will name this shard: it must be on disk first
            f.close()
        return self.shard


class ShardWriter:
    """Writes records into shards; `new_id` names each shard as it is opened."""

    def __init__(self, directory: Path, new_id: Callable[[], str], batch_size: int,
                 max_bytes: int = MAX_SHARD_BYTES, round_: int = 1) -> None:
        self.directory = directory
        self.new_id = new_id
        self.batch_size = batch_size
        self.max_bytes = max_bytes
        self.round = round_
        self.closed: list[Shard] = []
        self._open: dict[tuple[str, str], _Open] = {}
        directory.mkdir(parents=True, exist_ok=True)

    def fits(self, data: bytes) -> bool:
        """Whether a request line can go in a shard at all (the provider refuses bigger files)."""
        return len(data) <= self.max_bytes

    def add(self, endpoint: str, model: str, data: bytes, line: int, key: str, provider: str | None = None,
            tokens: int = 0, cap: int = 0) -> None:
        """Append one request line to its endpoint and model's shard, starting a new one when full
        (`tokens`: its prompt's estimate; `cap`: its output at most)."""
        k = (endpoint, model)
        cur = self._open.get(k)
        if cur is not None and (cur.shard.requests >= self.batch_size
                                or cur.shard.bytes + len(data) > self.max_bytes):
            self.closed.append(cur.close())
            cur = None
        if cur is None:
            sid = self.new_id()
            cur = self._open[k] = _Open(Shard(sid, endpoint, model, 0, 0, round=self.round, provider=provider),
                                        ShardFiles.of(self.directory, sid))
        cur.add(data, line, key, tokens, cap)

    def finish(self) -> list[Shard]:
        """Close every shard; all of them, in the order they were opened."""
        self.closed.extend(o.close() for o in self._open.values())
        self._open.clear()
        return sorted(self.closed, key=lambda s: s.id)


def index_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(input line, key) of each request of a shard, in file order."""
    with open(path, "rb") as f:
        for raw in f:
            line, key = orjson.loads(raw)
            yield int(line), str(key)


def reshard(parent: Shard, directory: Path, keep: Callable[[int], bool], writer: ShardWriter,
            full_names: bool = False) -> None:
    """Copy the requests of `parent` whose input line `keep`s into `writer`'s new shards; with
    `full_names`, a provider's model as NAME/model again (for the live path, which routes by it).
    Each request takes its share of the parent's token estimate and output caps."""
    files = ShardFiles.of(directory, parent.id)
    each, cap = parent.tokens / max(1, parent.requests), parent.out_cap / max(1, parent.requests)
    with open(files.requests, "rb") as reqs:
        for (line, key), data in zip(index_lines(files.index), reqs, strict=True):
            if keep(line):
                if full_names and parent.provider is not None:
                    doc = orjson.loads(data)
                    doc["body"]["model"] = parent.model
                    data = orjson.dumps(doc) + b"\n"
                writer.add(parent.endpoint, parent.model, data, line, key, parent.provider, round(each), round(cap))
