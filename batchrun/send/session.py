"""aiohttp for the exchanges that are not a live job's requests (the Batch API's files and
batches, its list): the session, and aiohttp's and asyncio's failures in batchrun's words.
The live requests go over `send/http1` (see there why)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
import orjson

from batchrun.errors import BadResponse, ConnectionLost, RequestError
from batchrun.send.client import USER_AGENT, timed_out

# What a transport failure looks like from aiohttp and asyncio; mapped by transport_error().
TRANSPORT_ERRORS = (TimeoutError, aiohttp.ClientError, ConnectionError, OSError)


def transport_error(e: BaseException, timeout_s: float) -> RequestError:
    """The batchrun RequestError for an aiohttp or asyncio transport failure."""
    if isinstance(e, TimeoutError):  # asyncio.TimeoutError is TimeoutError since 3.11
        return timed_out(timeout_s)
    if isinstance(e, aiohttp.ClientPayloadError):
        return ConnectionLost(f"the answer was cut off ({e.__class__.__name__})")
    if isinstance(e, aiohttp.ClientResponseError):
        return BadResponse(f"malformed HTTP answer: {e.message}", status=e.status)
    if isinstance(e, aiohttp.ClientError):
        return ConnectionLost(f"connection failed: {_describe(e)}")
    return ConnectionLost(f"connection failed: {e.__class__.__name__}")


@contextmanager
def map_aiohttp_errors(timeout_s: float) -> Iterator[None]:
    """Re-raise aiohttp and asyncio transport errors as batchrun RequestErrors."""
    try:
        yield
    except TRANSPORT_ERRORS as e:
        raise transport_error(e, timeout_s) from e


def make_session(concurrency: int) -> aiohttp.ClientSession:
    """A session with a connector sized to the concurrency, keep-alive on."""
    connector = aiohttp.TCPConnector(limit=concurrency, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        json_serialize=lambda o: orjson.dumps(o).decode(),
        timeout=aiohttp.ClientTimeout(total=None),
        headers={"User-Agent": USER_AGENT},
    )


def _describe(e: BaseException) -> str:
    """What went wrong, in words a user reads: where it could not connect and why, rather than
    the library's own exception text."""
    try:
        if isinstance(e, aiohttp.ClientConnectorDNSError):
            return f"cannot resolve the host {e.host}"
        if isinstance(e, aiohttp.ClientConnectorError) and not isinstance(e, aiohttp.ClientSSLError):
            code = getattr(e.os_error, "errno", None)
            why = os.strerror(code) if isinstance(code, int) else "no connection"
            return f"cannot connect to {e.host}:{e.port} ({why.lower()})"
    except (AttributeError, TypeError):  # an error built without its connection's fields
        pass
    try:
        text = str(e)
    except Exception:  # some aiohttp errors format from fields that may be unset
        text = ""
    return f"{e.__class__.__name__}: {text}" if text else e.__class__.__name__
