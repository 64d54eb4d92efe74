"""An OpenAI-compatible mock server on loopback: latency, errors, rate limits, usage.

Usage numbers are deterministic (a word-and-character count, deliberately not batchrun's own
estimator, so estimate / actual is a real measurement). Rate limits are token buckets refilling
continuously (or, with window="minute", counters reset each calendar minute) and answer with
OpenAI's `x-ratelimit-*` headers and a 429 carrying `retry-after` / `retry-after-ms`; both can be
switched off to play a gateway that says nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4.1-mini", "deepseek-chat", "sim-small")

_WORD = re.compile(r"[A-Za-z0-9_]+|[^\sA-Za-z0-9_]")

LABELS = ("positive", "negative", "neutral", "billing", "shipping", "technical")


@dataclass
class SimConfig:
    """How the simulator behaves."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_kinds: tuple[str, ...] = ("500", "429", "reset", "bad_body")
    fail_first: int = 0  # every distinct prompt fails its first N attempts
    fail_kinds: tuple[str, ...] = ("429", "500", "reset", "bad_body")
    hang_s: float = 30.0  # how long a "timeout" failure keeps the client waiting
    rpm: int | None = None
    tpm: int | None = None
    headers: bool = True
    window: str = "bucket"  # or "minute": counts reset at each calendar minute
    api_key: str | None = None  # when set, any other key gets 401
    models: tuple[str, ...] = DEFAULT_MODELS
    strict_models: bool = False  # unknown model -> 404
    context_window: int | None = None
    context_windows: dict[str, int] = field(default_factory=dict)  # per model, over the global one
    failing_models: tuple[str, ...] = ()  # these always answer 503
    seed: int = 0


def sim_tokens(text: str) -> int:
    """The simulator's token count of a text: about one per short word or symbol."""
    n = 0
    for w in _WORD.findall(text):
        n += max(1, math.ceil(len(w) / 6)) if w.isascii() else len(w)
    return n


def _messages_text(messages: Any) -> list[tuple[str, str]]:
    out = []
    for m in messages if isinstance(messages, list) else []:
        if not isinstance(m, dict):
            continue
        c = m.get("content")
        if isinstance(c, list):
            c = " ".join(p.get("text", "") for p in c if isinstance(p, dict))
        out.append((str(m.get("role")), c if isinstance(c, str) else ""))
    return out


@dataclass
class _Limit:
    limit: int
    level: float
    stamp: float
    window_start: float = 0.0

    def refill(self, now: float, window: str) -> None:
        if window == "minute":
            minute = now - (now % 60)
            if minute != self.window_start:
                self.window_start, self.level = minute, float(self.limit)
        else:
            self.level = min(self.limit, self.level + (now - self.stamp) * self.limit / 60.0)
        self.stamp = now

    def reset_s(self, now: float, window: str) -> float:
        if window == "minute":
            return 60 - (now % 60)
        return (self.limit - self.level) * 60.0 / self.limit

    def wait_s(self, amount: float, now: float, window: str) -> float:
        if window == "minute":
            return 60 - (now % 60)
        return max(0.0, (amount - self.level) * 60.0 / self.limit)


def _fmt(seconds: float) -> str:
    if seconds < 1:
        return f"{max(0, int(seconds * 1000))}ms"
    m, s = divmod(seconds, 60)
    return f"{int(m)}m{s:.3f}s" if m else f"{s:.3f}s"


@dataclass
class SimStats:
    """What the simulator saw, for tests and benchmarks."""

    requests: int = 0
    ok: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    by_prompt: Counter[str] = field(default_factory=Counter)
    ok_by_prompt: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ok_times: list[float] = field(default_factory=list)
    ok_charged: list[int] = field(default_factory=list)  # tokens counted against tpm, per answer

    def to_dict(self) -> dict[str, Any]:
        """JSON form for GET /_sim/stats."""
        return {
            "requests": self.requests,
            "ok": self.ok,
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "by_prompt": dict(self.by_prompt),
            "ok_by_prompt": dict(self.ok_by_prompt),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "ok_times": self.ok_times,
            "ok_charged": self.ok_charged,
        }


class Simulator:
    """The mock server's state and handlers."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.stats = SimStats()
        self.rng = random.Random(self.config.seed)
        self._limits: dict[str, tuple[_Limit | None, _Limit | None]] = {}
        self._seen_system: set[str] = set()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=64 << 20)
        for prefix in ("/v1", ""):
            app.router.add_post(prefix + "/chat/completions", self.chat)
            app.router.add_get(prefix + "/models", self.models)
        app.router.add_get("/_sim/stats", self.get_stats)
        app.router.add_post("/_sim/reset", self.reset_stats)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on loopback; returns the base URL (ending in /v1)."""
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

    async def get_stats(self, request: web.Request) -> web.Response:
        """GET /_sim/stats."""
        return web.Response(body=orjson.dumps(self.stats.to_dict()), content_type="application/json")

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
        return web.Response(body=orjson.dumps({"object": "list", "data": data}),
                            content_type="application/json")

    def _limit_pair(self, model: str, now: float) -> tuple[_Limit | None, _Limit | None]:
        pair = self._limits.get(model)
        if pair is None:
            c = self.config
            pair = (
                _Limit(c.rpm, float(c.rpm), now, now - now % 60) if c.rpm else None,
                _Limit(c.tpm, float(c.tpm), now, now - now % 60) if c.tpm else None,
            )
            self._limits[model] = pair
        return pair

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """POST /chat/completions."""
        c = self.config
        st = self.stats
        st.requests += 1
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return self._count(_error(400, "invalid_json", "We could not parse the JSON body."))
        if self._unauthorized(request):
            return self._count(_error(401, "invalid_api_key", "Incorrect API key provided."))
        msgs = _messages_text(body.get("messages"))
        prompt = msgs[-1][1] if msgs else ""
        st.by_prompt[prompt] += 1
        model = str(body.get("model") or "")
        if c.strict_models and model not in c.models:
            return self._count(_error(404, "model_not_found",
                                      f"The model `{model}` does not exist or you do not have access to it."))
        prompt_tokens = 3 + sum(4 + sim_tokens(text) for _, text in msgs)
        window = c.context_windows.get(model, c.context_window)
        if window and prompt_tokens > window:
            return self._count(_error(400, "context_length_exceeded",
                                      f"This model's maximum context length is {window} tokens."))
        if model in c.failing_models:
            return self._count(_error(503, "overloaded", "The model is overloaded."))
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        digest = hashlib.blake2b(prompt.encode(), digest_size=8).digest()
        completion = 8 + digest[0] % 40
        if isinstance(max_tokens, int) and max_tokens > 0:
            completion = min(completion, max_tokens)

        kind = None
        if c.fail_first and st.by_prompt[prompt] <= c.fail_first:
            kind = c.fail_kinds[(st.by_prompt[prompt] - 1) % len(c.fail_kinds)]
        elif c.error_rate and self.rng.random() < c.error_rate:
            kind = self.rng.choice(c.error_kinds)

        headers: dict[str, str] = {"x-request-id": "req_" + digest.hex() + f"{st.requests:x}"}
        now = time.time()
        rl, tl = self._limit_pair(model, now)
        cost = prompt_tokens + (max_tokens if isinstance(max_tokens, int) else completion)
        if rl or tl:
            for lim in (rl, tl):
                if lim:
                    lim.refill(now, c.window)
            wait = 0.0
            if rl and rl.level < 1:
                wait = max(wait, rl.wait_s(1, now, c.window))
            if tl and tl.level < min(cost, tl.limit):
                wait = max(wait, tl.wait_s(min(cost, tl.limit), now, c.window))
            if wait > 0:
                if c.headers:
                    headers["retry-after"] = str(max(1, math.ceil(wait)))
                    headers["retry-after-ms"] = str(int(wait * 1000))
                    self._rate_headers(headers, rl, tl, now)
                return self._count(_error(429, "rate_limit_exceeded",
                                          "Rate limit reached. Please try again later.", headers))
            if rl:
                rl.level -= 1
            if tl:
                tl.level -= cost
            if c.headers:
                self._rate_headers(headers, rl, tl, now)

        if kind == "429":
            headers["retry-after-ms"] = "10"
            return self._count(_error(429, "rate_limit_exceeded", "Injected rate limit.", headers))
        delay = c.latency_ms + (self.rng.uniform(-c.jitter_ms, c.jitter_ms) if c.jitter_ms else 0)
        if kind == "timeout":
            delay = c.hang_s * 1000
        if delay > 0:
            await asyncio.sleep(delay / 1000)
        if kind == "500":
            return self._count(_error(500, "server_error", "Injected server error.", headers))
        if kind == "reset":
            if request.transport is not None:
                request.transport.close()
            st.statuses[0] += 1
            return web.Response(status=500)
        if kind == "bad_body":
            st.statuses[200] += 1
            return web.Response(body=b'{"id": "chatcmpl-x", "choi', content_type="application/json",
                                headers=headers)

        cached = 0
        system = next((t for r, t in msgs if r == "system"), None)
        if system is not None:
            if system in self._seen_system and prompt_tokens >= 1024:
                cached = (sim_tokens(system) // 128) * 128
            self._seen_system.add(system)
        label = LABELS[digest[1] % len(LABELS)]
        resp = {
            "id": "chatcmpl-" + digest.hex(),
            "object": "chat.completion",
            "created": int(now),
            "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": label}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                      "total_tokens": prompt_tokens + completion,
                      "prompt_tokens_details": {"cached_tokens": cached}},
        }
        st.ok += 1
        st.ok_by_prompt[prompt] += 1
        st.prompt_tokens += prompt_tokens
        st.completion_tokens += completion
        if len(st.ok_times) < 1_000_000:  # bounded: benchmarks read rates off these
            st.ok_times.append(time.monotonic())
            st.ok_charged.append(cost)
        return self._count(web.Response(body=orjson.dumps(resp), content_type="application/json",
                                        headers=headers))

    def _count(self, resp: web.Response) -> web.Response:
        self.stats.statuses[resp.status] += 1
        return resp

    def _rate_headers(self, h: dict[str, str], rl: _Limit | None, tl: _Limit | None, now: float) -> None:
        w = self.config.window
        if rl:
            h["x-ratelimit-limit-requests"] = str(rl.limit)
            h["x-ratelimit-remaining-requests"] = str(max(0, int(rl.level)))
            h["x-ratelimit-reset-requests"] = _fmt(rl.reset_s(now, w))
        if tl:
            h["x-ratelimit-limit-tokens"] = str(tl.limit)
            h["x-ratelimit-remaining-tokens"] = str(max(0, int(tl.level)))
            h["x-ratelimit-reset-tokens"] = _fmt(tl.reset_s(now, w))


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error" if status < 500 else "server_error",
                      "code": code}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json",
                        headers=headers)

