"""`Sender.send`: one record to one Result, through the budget, the limiter, retries and fallbacks.
Layered as httpx does it: `Sender.send` loops over the record's chain of models; `_attempts` over
one model's attempts, each a `Client.send_once` exchange."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from batchrun.account.pricing import PriceBook
from batchrun.errors import (
    AuthError,
    CircuitOpen,
    ConnectionLost,
    ContextTooLong,
    ModelNotFound,
    NotSent,
    ProviderDown,
    QuotaExhausted,
    RateLimited,
    RequestError,
    RetryableError,
    ServerError,
    Timeout,
    WaitTooLong,
)
from batchrun.input.endpoints import ENDPOINTS
from batchrun.limit.budget import Budget, BudgetGate
from batchrun.limit.headers import parse_rate_headers
from batchrun.limit.limiter import Limiter, Limiters, StopSignal
from batchrun.limit.permit import Permit
from batchrun.records import Fallback, Record, Result, Usage
from batchrun.route.plan import Planner, RecordPlan
from batchrun.route.providers import Target, Targets
from batchrun.secret import redact_url
from batchrun.send.breaker import Breaker
from batchrun.send.client import Client
from batchrun.send.gateway import answer_cost, upstream_retries
from batchrun.send.retry import RetryPolicy, next_delay, parse_retry_after
from batchrun.send.tally import Abandoned, Tally, failure
from batchrun.send.unknown_model import ModelWatch

# The prompt estimate is a few per cent off a real tokenizer either way; a --max-cost reservation
# assumes it may be this much short.
INPUT_MARGIN = 1.25


@dataclass(frozen=True, slots=True)
class SenderStatistics:
    """How the sender is doing, for the live display."""

    retries: int  # attempts beyond each record's first
    circuits_opened: int = 0  # times a provider's model was cut off by its circuit breaker


class Sender:
    """Turns a Record into its Result; raises AuthError or BudgetReached to stop the job."""

    def __init__(
        self,
        client: Client | Mapping[str | None, Client],
        limiters: Limiters,
        prices: PriceBook,
        budget: Budget,
        policy: RetryPolicy,
        fallback_models: Sequence[str] = (),
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
        planner: Planner | None = None,
        targets: Targets | None = None,
        key_sources: Mapping[str | None, str] | None = None,
    ) -> None:
        # one client per provider (None: the default endpoint), each with its own pool and key
        self.clients: dict[str | None, Client] = dict(client) if isinstance(client, Mapping) else {None: client}
        self.client = self.clients[None]
        self.planner = planner
        self.targets = targets or Targets()
        self.key_sources = dict(key_sources or {})  # where each provider's key was read, for messages
        self.limiters = limiters
        self.prices = prices
        self.budget = budget
        self.gate = BudgetGate(budget)
        self.policy = policy
        self.fallback_models = tuple(fallback_models)
        self.rng = rng or random.Random()
        self.wall_clock = wall_clock  # epoch seconds: what a request is billed at
        self.breaker = Breaker()
        self.retries = 0  # attempts beyond each record's first, for the progress line
        self.abandoned = Abandoned()  # requests sent for records a clean stop then let go
        self.model_watch = ModelWatch(note=self.abandoned.note)  # a model refused a handful of times stops the job
        self.stopping = StopSignal()  # set on a clean stop: records not yet sent are let go

    def statistics(self) -> SenderStatistics:
        """The sender's running figures."""
        return SenderStatistics(self.retries, sum(self.breaker.opened().values()))

    def worst_case_usd(self, model: str, rec: Record) -> float:
        """The most this record can cost on this model (0 when its price is unknown).

        Output is bounded by max_tokens; input is only an estimate, so it gets a margin.
        """
        est_input = int(rec.est_input_tokens * INPUT_MARGIN) + 1
        t = self.targets(model)
        cost = self.prices.most(t.model, Usage(est_input, rec.max_output_tokens, 0), t.provider)
        return cost or 0.0

    async def send(self, rec: Record) -> Result:
        """The record's final Result after retries and fallbacks."""
        if self.planner is not None:
            plan = self.planner.plan(rec)
            return await self._chain(rec, plan, plan.route)
        window = self.prices.context_window(rec.model)
        fits = window is None or rec.est_input_tokens <= window
        if fits and not self.fallback_models and self.budget.cap_usd is None:
            only, err = await self._attempts(rec, rec.model, Tally())  # the common, fast path
            self._check_down(rec.model, err)
            return only
        return await self._chain(rec, RecordPlan((rec.model, *(m for m in self.fallback_models if m != rec.model)), ""))

    async def send_to(self, rec: Record, model: str, route: str) -> Result:
        """The record answered by one given model only (the shadow): one attempt, no fallbacks."""
        return await self._chain(rec, RecordPlan((model,), route, once=True), route)

    async def _chain(self, rec: Record, plan: RecordPlan, route: str | None = None) -> Result:
        """Down the plan's models until one answers, or a failure no other model would mend; with
        a `route`, its Results say it, and which provider answered."""
        chain = plan.chain
        tally = Tally(route=route)
        result: Result | None = None
        for i, model in enumerate(chain):
            last = i + 1 == len(chain)
            t = self.targets(model)
            window = self.prices.context_window(t.model, t.provider)
            if window is not None and rec.est_input_tokens > window:
                result = failure(rec, model, tally, None, "context_length_exceeded",
                                 f"prompt of about {rec.est_input_tokens} tokens is over "
                                 f"{model}'s context window of {window}", t.provider)
                if not last:
                    tally.fallbacks.append(Fallback(model, "context_length_exceeded"))
                continue
            reserve = self.worst_case_usd(model, rec) if self.budget.cap_usd is not None else 0.0
            await self.gate.reserve(reserve, self.stopping)
            spent: float | None = None
            before, limited_before = tally.attempts, tally.rate_limited
            canary = plan.canary and i == 0
            try:
                result, err = await self._attempts(rec, model, tally, 1 if canary or plan.once else None,
                                                   not last or plan.once)
                spent = result.cost_usd
            except (AuthError, QuotaExhausted) as e:
                if not canary or self.planner is None:  # the job stops: every record would be refused the same way
                    raise self.abandoned.note(model, tally, e) from None
                self.planner.roll_back(f"{model} refused: {e.message}")  # only the canary's provider did
                result, err = failure(rec, model, tally, e, e.code, e.message, t.provider), e
            finally:
                self.gate.settle(reserve, spent)
            if canary and self.planner is not None and not isinstance(err, CircuitOpen):
                self.planner.observe(err is None, result.latency_ms, tally.hidden)
            if last:
                self._check_down(model, err)
            rescue = canary or isinstance(err, ModelNotFound | ContextTooLong | RetryableError)
            if err is None or last or not rescue:
                return result
            tally.fallbacks.append(Fallback(model, err.code, tally.attempts - before,
                                            tally.rate_limited - limited_before))
        assert result is not None
        return result

    def _check_down(self, model: str, err: RequestError | None) -> None:
        """A record whose attempts all failed while its provider is down is not a failed record:
        the job stops and the next run sends it."""
        t = self.targets(model)
        if isinstance(err, _DOWN_SIGNS) and self.breaker.down(t.model, t.provider):
            url = self.clients[t.provider].base_url if t.provider in self.clients else self.client.base_url
            raise ProviderDown(f"{model} at {redact_url(url)} does not answer ({err.message})")

    async def _attempts(
        self, rec: Record, model: str, tally: Tally, most: int | None = None, may_fall: bool = False
    ) -> tuple[Result, RequestError | None]:
        """Attempts on one model until an answer, a fatal error or --max-attempts failures (or
        `most`). A 429 is not a failure: the record waits on the limiter for as long as the job
        runs. With `may_fall` (somewhere else to go), an open circuit sends the record on at once."""
        t = self.targets(model)
        body = rec.body if model == rec.model and t.provider is None else {**rec.body, "model": t.model}
        limiter = self.limiters.get(t.model, t.provider)
        est = rec.est_input_tokens + rec.max_output_tokens
        failures = 0
        while True:
            if may_fall and not self.breaker.allow(t.model, t.provider):
                err = CircuitOpen(f"{model}: its circuit breaker is open after failures in a row")
                return failure(rec, model, tally, None, err.code, err.message, t.provider), err
            permit = await limiter.acquire(est, self.stopping)
            if permit is None:  # a clean stop: no attempt of it is on the wire, the next run sends it
                raise self.abandoned.note(model, tally, NotSent("stopped before it was sent"))
            outcome = await self._attempt(rec, t, body, limiter, permit, tally)
            if isinstance(outcome, Result):
                self.model_watch.answered(t.provider, t.model)
                return outcome, None
            # a 429 is not a failure; nor is a model_not_found while the model name may be wrong
            if isinstance(outcome, RateLimited) or self.model_watch.held(model, t, outcome, may_fall, tally):
                continue
            failures += 1
            delay = next_delay(self.policy, failures, outcome, self.rng)
            if most is not None and failures >= most or may_fall and self.breaker.is_open(t.model, t.provider):
                delay = None
            if delay is None:
                msg = outcome.message
                if isinstance(outcome, RetryableError) and failures >= self.policy.max_attempts:
                    msg = f"gave up after {failures} failed attempts: {msg}"
                return failure(rec, model, tally, outcome, outcome.code, msg, t.provider), outcome
            await self._backoff(delay, model, tally)

    def _check_wait(self, retry_after: float | None, model: str, tally: Tally) -> None:
        """A server asking to wait longer than --max-wait stops the job, to be run again later."""
        limit = self.policy.max_wait_s
        if retry_after is not None and limit is not None and retry_after > limit:
            raise self.abandoned.note(model, tally, WaitTooLong(
                f"the server asks to wait {retry_after:g}s, longer than --max-wait {limit:g}s"))

    async def _backoff(self, seconds: float, model: str, tally: Tally) -> None:
        """Wait before the next attempt; a clean stop lets go of the record (no attempt of it is
        on the wire, and the next run sends it)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)
        if self.stopping.is_set():
            raise self.abandoned.note(model, tally, NotSent("stopped while waiting to retry"))

    async def _attempt(
        self, rec: Record, t: Target, body: dict[str, Any], limiter: Limiter, permit: Permit, tally: Tally
    ) -> Result | RequestError:
        """One exchange, reported to the limiter; the Result, or the error to retry or record."""
        endpoint = ENDPOINTS[rec.endpoint]
        model, provider = t.name, t.provider
        tally.attempts += 1
        self.retries += tally.attempts > 1
        sent_at = self.wall_clock()
        if tally.started_at is None:
            tally.started_at = sent_at
        try:
            ans = await self.clients[provider].send_once(body, endpoint)
        except RateLimited as e:
            tally.rate_limited += 1
            limiter.rate_limited(permit, e.retry_after, _headers(e))
            self._check_wait(e.retry_after, model, tally)
            return e
        except RequestError as e:
            limiter.answered(permit, None, _headers(e))
            tally.possibly_billed += e.possibly_billed
            if isinstance(e, _DOWN_SIGNS):
                self.breaker.failed(t.model, provider, reached=isinstance(e, ServerError))
            else:
                self.breaker.answered(t.model, provider)
            if isinstance(e, AuthError):
                where = f"provider {provider!r}" if provider else "the API"
                env = self.key_sources.get(provider, "its variable")
                raise AuthError(f"{where} refused the key read from {env} ({e.message})", status=e.status) from None
            if isinstance(e, QuotaExhausted):
                raise
            if isinstance(e, ServerError) and e.headers is not None:  # a 503 may ask to wait too
                self._check_wait(parse_retry_after(e.headers, self.wall_clock()), model, tally)
            return e
        except BaseException:  # cancelled in flight (a shadow whose record stopped, a second Ctrl-C): it was sent
            limiter.answered(permit, None, None)
            self.abandoned.note(model, tally, NotSent("cancelled in flight"))
            raise
        self.breaker.answered(t.model, provider)
        tally.hidden += upstream_retries(ans.headers) if ans.gateway else 0
        reported = endpoint.usage(ans.body)
        usage = reported or Usage()  # no usage: tokens and cost unknown (unmetered), never $0
        # what the provider counts against tokens-per-minute: prompt plus max_tokens when the
        # request caps its output (OpenAI reserves it), else the output it produced
        charged = usage.input_tokens + (rec.max_output_tokens if endpoint.capped(body) else usage.output_tokens)
        if reported is None:
            charged = rec.est_input_tokens + rec.max_output_tokens
        limiter.answered(permit, charged, parse_rate_headers(ans.headers),
                         rec.est_input_tokens + rec.max_output_tokens if usage.input_tokens else None)
        return Result(
            key=rec.key, line=rec.line, model=model, status_code=ans.status,
            request_id=ans.request_id, raw_body=ans.raw, attempts=tally.attempts,
            latency_ms=ans.latency_ms, usage=usage,
            cost_usd=None if reported is None else answer_cost(self.prices, t, usage, sent_at, ans),
            rate_limited=tally.rate_limited, fallbacks=tuple(tally.fallbacks), started_at=tally.started_at,
            unmetered=reported is None, possibly_billed=tally.possibly_billed,
            route=tally.route, provider=provider if tally.route is not None else None,
        )


# What a provider that is down answers; a 4xx or a bad body is an answer.
_DOWN_SIGNS = (ServerError, ConnectionLost, Timeout)


def _headers(e: RequestError) -> Any:
    return parse_rate_headers(e.headers) if e.headers is not None else None

