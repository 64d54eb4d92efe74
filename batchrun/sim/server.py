"""An OpenAI-compatible mock server on loopback, enforcing limits the way providers do.

The parts: `config` (SimConfig), `limits` (per-model requests and tokens limits in a bucket,
fixed windows or calendar minutes), `answers` (what it says), `faults` (what goes wrong on
purpose) and `stats` (what it saw). This module serves them over HTTP: the x-ratelimit-*
headers and a 429's retry-after can each be switched off to play a gateway that says less; an
account can run out of quota; and past `queue_over` answers at once a request is held on a
DeepSeek-style keep-alive stream instead of refused.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Callable

import orjson
from aiohttp import web

from batchrun.sim.answers import Ask, PromptCache, error_body, sim_tokens
from batchrun.sim.batch_api.batches import BatchService
from batchrun.sim.config import DEFAULT_MODELS, SimConfig, check_config
from batchrun.sim.endpoints import SIM_ENDPOINTS, Asked, BadAsk, SimEndpoint
from batchrun.sim.faults import Outcome, fault_outcome, injected_429_headers, pick_fault, quota_body
from batchrun.sim.flex import flex_answer, flex_latency, flex_refusal
from batchrun.sim.limits import ModelLimits, Shape, retry_after_headers
from batchrun.sim.stats import SimStats
from batchrun.sim.variants import differs, vary

__all__ = ["DEFAULT_MODELS", "SimConfig", "SimStats", "Simulator", "sim_tokens"]

JSON = "application/json"


def _json(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    kind = "text/html" if body.startswith(b"<") else JSON  # the "html" fault is a proxy's page
    return web.Response(status=status, body=body, content_type=kind, headers=headers)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json(status, error_body(status, code, message), headers)


async def _write(resp: web.StreamResponse, data: bytes) -> bool:
    """Write to a held stream; False when the client has gone."""
    try:
        await resp.write(data)
    except ConnectionResetError:  # aiohttp's ClientConnectionResetError: closing transport
        return False
    return True


class Simulator:
    """The mock server's state and handlers. `clock` is the wall clock the limits read."""

    def __init__(self, config: SimConfig | None = None, clock: Callable[[], float] = time.time) -> None:
        self.config = config or SimConfig()
        check_config(self.config)
        self.stats = SimStats()
        self.rng = random.Random(self.config.seed)
        self._clock = clock
        self._origin = clock()
        self._limits: dict[str, ModelLimits] = {}
        self._cache = PromptCache()
        q = self.config.queue_over
        self._slots = asyncio.Semaphore(q) if q else None  # answering places, with the keep-alive queue
        self._busy = 0  # requests in their latency now
        self._open = 0  # chat handlers running now
        self._idle = asyncio.Event()
        self._idle.set()
        self._billed_total = 0  # the account's, for the quota: /_sim/reset does not refund it
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.batches = BatchService(self, lambda request: not self._unauthorized(request))

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=64 << 20)
        for prefix in ("/v1", ""):
            for ep in SIM_ENDPOINTS:
                app.router.add_post(prefix + ep.path, functools.partial(self.serve, ep=ep))
            app.router.add_get(prefix + "/models", self.models)
        self.batches.register(app)
        app.router.add_get("/_sim/stats", self.get_stats)
        app.router.add_post("/_sim/reset", self.reset_stats)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on loopback; returns the base URL (ending in /v1)."""
        self._origin = self._clock()  # fixed windows count from here
        self._limits.clear()
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        real_port = self._runner.addresses[0][1]
        self.base_url = f"http://{host}:{real_port}/v1"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def idle(self) -> None:
        """Wait until no chat request is being handled (held, answered or written)."""
        await self._idle.wait()

    async def get_stats(self, request: web.Request) -> web.Response:
        """GET /_sim/stats; `origin` (wall clock) is where fixed windows start counting, and
        `wall_offset` turns the monotonic times in the stats into wall-clock ones."""
        clocks = {"origin": self._origin, "wall_offset": time.time() - time.monotonic()}
        return _json(200, orjson.dumps({**self.stats.to_dict(), **clocks}))

    async def reset_stats(self, request: web.Request) -> web.Response:
        """POST /_sim/reset: zero the counters (between benchmark phases)."""
        self.stats = SimStats()
        return web.Response(text="ok")

    def _unauthorized(self, request: web.Request) -> bool:
        want = self.config.api_key
        return want is not None and request.headers.get("Authorization") != f"Bearer {want}"

    async def models(self, request: web.Request) -> web.Response:
        """GET /models."""
        if self._unauthorized(request):
            return _error(401, "invalid_api_key", "Incorrect API key provided.")
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "batchrun-sim"}
                for m in self.config.models]
        return _json(200, orjson.dumps({"object": "list", "data": data}))

    async def serve(self, request: web.Request, ep: SimEndpoint) -> web.StreamResponse:
        """POST to one of the endpoints (chat completions, embeddings, completions, responses)."""
        self._open += 1
        self._idle.clear()
        try:
            return await self._serve(request, ep)
        finally:
            self._open -= 1
            if self._open == 0:
                self._idle.set()

    async def _serve(self, request: web.Request, ep: SimEndpoint) -> web.StreamResponse:
        c, st = self.config, self.stats
        st.received(time.monotonic())
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return self._send(_error(400, "invalid_json", "We could not parse the JSON body."))
        if self._unauthorized(request):
            return self._send(_error(401, "invalid_api_key", "Incorrect API key provided."))
        try:
            ask = ep.read(body)
        except BadAsk as e:
            return self._send(_error(400, "invalid_request_error", str(e)))
        st.by_prompt[ask.prompt] += 1
        refused = self._refusal(ask) or ((f := flex_refusal(c, body, self.rng)) and _json(*f))
        if refused is not None:
            return self._send(refused)
        headers = {"x-request-id": "req_" + ask.digest.hex() + f"{st.requests:x}"}
        now = self._clock()
        limits = self._limits_of(ask.model, now)
        wait = limits.admit(ask.charge, now) if limits is not None else 0.0
        if c.headers and limits is not None:
            headers.update(limits.headers(now))
        if wait > 0.0:
            headers.update(retry_after_headers(wait, c.retry_after))
            return self._send(_error(429, "rate_limit_exceeded", "Rate limit reached. Please try again later.",
                                     headers))
        st.admit(time.monotonic(), ask.charge)
        kind = pick_fault(c, st.by_prompt[ask.prompt], self.rng)
        if kind == "429":
            headers.update(injected_429_headers(c.retry_after))
            return self._send(_error(429, "rate_limit_exceeded", "Injected rate limit.", headers))
        if self._slots is not None and self._slots.locked():
            return await self._queued(request, (ep, ask, body), kind, headers)
        if self._slots is not None:
            await self._slots.acquire()  # a place is free (checked just above): no wait
        return self._respond(request, await self._answer((ep, ask, body), kind), headers)

    def _refusal(self, ask: Ask) -> web.Response | None:
        """The error answering this request before any limit is counted, if it gets one."""
        c = self.config
        if c.strict_models and ask.model not in c.models:
            return _error(404, "model_not_found",
                          f"The model `{ask.model}` does not exist or you do not have access to it.")
        window = c.context_windows.get(ask.model, c.context_window)
        if window and ask.prompt_tokens > window:
            return _error(400, "context_length_exceeded", f"This model's maximum context length is {window} tokens.")
        if ask.model in c.failing_models:
            return _error(503, "overloaded", "The model is overloaded.")
        if c.quota is not None and self._billed_total >= c.quota:
            # Out of credit is a 429 too, but waiting does not help: no retry-after.
            return _json(429, quota_body())
        return None

    def _limits_of(self, model: str, now: float) -> ModelLimits | None:
        c = self.config
        if not (c.rpm or c.tpm):
            return None
        limits = self._limits.get(model)
        if limits is None:
            shape = Shape(c.window, c.burst_s, c.window_s, self._origin)
            limits = self._limits[model] = ModelLimits(c.rpm, c.tpm, shape, now)
        return limits

    async def _answer(self, asked: Asked, kind: str | None) -> Outcome:
        """Take the latency in an answering place already held (and free it), then make the answer."""
        c = self.config
        ep, ask, body = asked
        self._busy += 1
        self.stats.concurrent_max = max(self.stats.concurrent_max, self._busy)
        try:
            delay = flex_latency(c, body, self.rng)
            if kind == "timeout":
                delay = c.hang_s * 1000
            if delay > 0:
                await asyncio.sleep(delay / 1000)
        finally:
            self._busy -= 1
            if self._slots is not None:
                self._slots.release()
        fault = fault_outcome(kind) if kind else None
        if fault is not None:
            return fault
        cached = self._cache.cached_tokens(ask)
        self.stats.bill(ask.prompt, ask.prompt_tokens, ask.completion_tokens, ask.charge, time.monotonic(),
                        ep.name)
        self._billed_total += 1
        answer = flex_answer(ep.answer(ask, body, cached, int(self._clock())), body, self.stats)
        if ep.name == "chat" and differs(ask.prompt, c.differ_share):
            answer = vary(answer)
        return Outcome(200, answer, billed=True)

    def _respond(self, request: web.Request, outcome: Outcome, headers: dict[str, str]) -> web.Response:
        if outcome.reset:
            if request.transport is not None:
                request.transport.close()
            self.stats.answered(0)
            return web.Response(status=500)
        return self._send(_json(outcome.status, outcome.body, headers))

    def _send(self, resp: web.Response) -> web.Response:
        self.stats.answered(resp.status)
        return resp

    async def _queued(self, request: web.Request, asked: Asked, kind: str | None,
                      headers: dict[str, str]) -> web.StreamResponse:
        """DeepSeek's way when busy (https://api-docs.deepseek.com/quick_start/rate_limit): 200 and
        the headers at once, an empty line every keepalive_s until a place is free, then the body.
        A failure found after that can only show in the body: the status has gone."""
        resp = web.StreamResponse(status=200, headers=headers)
        resp.content_type = JSON
        self.stats.answered(200)
        try:
            await resp.prepare(request)
            here = True
        except ConnectionResetError:
            here = False
        here = await self._hold(resp, here)
        outcome = await self._answer(asked, kind)
        if outcome.reset:
            if request.transport is not None:
                request.transport.close()
            here = False
        elif here:
            here = await _write(resp, outcome.body)
        if here:
            try:
                await resp.write_eof()
            except ConnectionResetError:
                here = False
        if outcome.billed and not here:
            self.stats.billed_unsent += 1
        return resp

    async def _hold(self, resp: web.StreamResponse, here: bool) -> bool:
        """Wait for an answering place, writing b"\\n" every keepalive_s while the client is there
        (`here`); returns whether it still is. The place is held when this returns."""
        assert self._slots is not None
        acquire = asyncio.ensure_future(self._slots.acquire())
        try:
            while True:
                done, _ = await asyncio.wait({acquire}, timeout=self.config.keepalive_s)
                if done:
                    acquire.result()
                    return here
                if here:
                    here = await _write(resp, b"\n")
        except BaseException:
            if acquire.done() and not acquire.cancelled():
                self._slots.release()  # it came as we were cancelled: give it back
            acquire.cancel()
            raise
