"""When may the next request to one provider's model go? Pure: time is passed in.

Limits are found the way the providers enforce them
(https://platform.openai.com/docs/guides/rate-limits: limits "may be quantized", a 60,000 RPM
limit "enforced as 1,000 requests per second"; TPM counts the prompt plus `max_tokens`):

1. `--rpm` / `--tpm` are fixed: nothing the server says changes them.
2. Nothing known yet: slow start. One request goes, its answer is read, then the window of
   requests in flight grows by one per answer (it doubles every round trip) until the limit is
   known, a 429 comes, or it reaches the concurrency. An answer that states no limit, before
   any 429, opens it to half the concurrency at once (the rest follows within a round trip), or
   to all of it when that answer took SLOW_ANSWER_S or more: a server without limits (vLLM, a
   gateway without limits) costs about one round trip, not six, and the whole concurrency never
   fires blind. When a burst meets a limit no header stated, the first cut waits for the
   burst's answers: what a short bucket let through in that second is its rate, where the
   first 429 alone would read one or two answers.
3. OpenAI's `x-ratelimit-*` headers on any answer set the limits; `remaining` (less what we
   have in flight) pulls our bucket down when others spend the same key.
4. A 429 is a congestion signal even when it says how long to wait: every dispatch pauses for
   its `retry-after`, and the send rate is cut (multiplicative decrease), then grows back slowly
   (additive increase) while answers come. A wait of seconds means a window (Azure's 10 s, a
   gateway's calendar minute): the window's budget is spent, then we wait it out, without a cut.
   A 429 that says nothing pauses briefly, doubling while they come in a row, and the request
   after the pause goes alone, as a probe: the next ones follow once it is answered.
"""

from __future__ import annotations

import math

from batchrun.limit.bucket import Bucket
from batchrun.limit.headers import RateHeaders
from batchrun.limit.pace import Pace
from batchrun.limit.permit import Permit, RateSource, Shape
from batchrun.limit.share import Share

# An answer this slow says the server generates (an LLM): half a window would cost half the
# throughput for a whole round trip, so slow start opens the whole concurrency.
SLOW_ANSWER_S = 0.1
# The longest the first cut waits for the answers of the burst that met an unknown limit.
FIRST_CUT_WAIT_S = 1.0
# A retry-after at least this long means a window that resets, not a bucket that refills.
WINDOW_WAIT_S = 2.0
# A 429 that says nothing: pause this long, doubling for bursts in a row, never past the cap.
SILENT_PAUSE_S = 0.1
MAX_SILENT_PAUSE_S = 5.0
# Server token counts ÷ our estimate is learned with this weight per answer.
SCALE_WEIGHT = 0.1


class RateController:
    """The limits of one provider and model."""

    def __init__(
        self, rpm: float | None = None, tpm: float | None = None, *, ceiling: int = 1 << 20, now: float = 0.0
    ) -> None:
        self.fixed_rpm = rpm
        self.fixed_tpm = tpm
        self.requests = Bucket(rpm, now) if rpm else None
        self.tokens = Bucket(tpm, now) if tpm else None
        self.rpm_source: RateSource | None = RateSource.FLAG if rpm else None
        self.tpm_source: RateSource | None = RateSource.FLAG if tpm else None
        self.limit_rpm = rpm  # the limit stated by a flag or the headers; the send rate stays under it
        self.ceiling = ceiling
        self.window = float(ceiling) if rpm or tpm else 1.0  # requests in flight at most
        self.slow_start = not (rpm or tpm)
        self.shape = Shape.UNKNOWN
        self.paused_until = 0.0
        self.inflight_requests = 0
        self.inflight_tokens = 0
        self.rate_limited = 0
        self.token_scale = 1.0
        self.pace = Pace(now)
        self.share = Share()
        self._silent = 0  # 429 bursts in a row that said nothing
        # the request sent alone after such a pause, until it comes back: its answer, not the
        # bucket, says whether the server lets requests through again (behind a gateway a 429
        # takes longer to come back than the bucket's next request takes to be due)
        self._probe: Permit | None = None
        # the limit is shared through Redis (limit/shared): others' spend is counted there, so
        # the server's count does not pull our bucket down and a 429 cuts the shared rate
        self.shared = False
        self._held_at = -math.inf
        self._first_cut_by: float | None = None  # the first cut, due once its burst has answered
        self._sent = 0
        self._sent_tokens = 0

    @property
    def rpm(self) -> float | None:
        """The request rate we send at, per minute, if one is set."""
        return self.requests.per_minute if self.requests else None

    @property
    def tpm(self) -> float | None:
        """The token rate we send at, per minute, if one is set."""
        return self.tokens.per_minute if self.tokens else None

    @property
    def unlimited(self) -> bool:
        """Nothing holds a request back: no rate, no pause, a full window."""
        return self.requests is None and self.tokens is None and not self.slow_start and not self._silent

    def reservation(self, est_tokens: int) -> int:
        """What a request of `est_tokens` (our estimate) reserves, scaled by what the server counts."""
        return max(1, int(est_tokens * self.token_scale + 0.5))

    def delay(self, tokens: int, now: float) -> float:
        """Seconds until a request reserving `tokens` may go; 0 means now, inf until an answer."""
        if self._first_cut_by is not None and not self._first_cut(now):
            return self._first_cut_by - now  # or sooner: the burst's last answer
        if self.inflight_requests >= self.window or self._probe is not None:
            return math.inf
        wait = self.paused_until - now
        if self.requests is not None:
            wait = max(wait, self.requests.wait_for(1, now))
        if self.tokens is not None:
            wait = max(wait, self.tokens.wait_for(tokens, now))
        return max(0.0, wait)

    def take(self, tokens: int, now: float) -> Permit:
        """Account a request as sent."""
        if self.requests is not None:
            self.requests.level -= 1
        if self.tokens is not None:
            self.tokens.level -= tokens
        permit = Permit(tokens, self._sent, self._sent_tokens, now)
        if self._silent:
            self._probe = permit
        if self.rpm_source is RateSource.HEADERS:
            self.share.sent(now)
        self.inflight_requests += 1
        self.inflight_tokens += tokens
        self._sent += 1
        self._sent_tokens += tokens
        return permit

    def on_answer(
        self, permit: Permit, charged: int | None, info: RateHeaders | None, now: float, est: int | None = None
    ) -> None:
        """A request came back (any status but 429). `charged` is what the server counted against
        tokens-per-minute when it answered, None when it failed; `est` our estimate of it."""
        reserved = permit.reserved
        self.inflight_requests -= 1
        self.inflight_tokens -= reserved
        if charged is not None or permit is self._probe:
            self._probe = None
        if charged is not None:
            self._silent = 0
            self.pace.answered(permit.at, now)
            if self.tokens is not None:
                self.tokens.level += reserved - charged
            if est:
                self.token_scale += SCALE_WEIGHT * (charged / est - self.token_scale)
        if self.requests is not None and self.fixed_rpm is None:  # a 5xx is no sign of the rate either
            cap = self.limit_rpm if self.limit_rpm is None else min(self.limit_rpm, self.share.rpm or self.limit_rpm)
            self.pace.grow(self.requests, cap, now)
        if self.slow_start:  # any answer but a 429 says the server is not refusing the rate
            grown = self.window + 1.0
            if info is None and self.rate_limited == 0:
                # no limit stated and none enforced so far (vLLM, a gateway without limits):
                # half the concurrency at once; all of it when answers take long, where half a
                # window is half the throughput for a whole round trip (Little's law) while a
                # burst into a limit would cost only 429s, and the first cut reads that limit
                slow = now - permit.at >= SLOW_ANSWER_S
                grown = max(grown, float(self.ceiling if slow else self.ceiling // 2))
            self.window = min(float(self.ceiling), grown)
            self.slow_start = self.window < self.ceiling
        if info is not None:
            self._learn(info, permit, now)

    def on_rate_limited(
        self, permit: Permit, retry_after: float | None, info: RateHeaders | None, now: float
    ) -> None:
        """A 429: refund the request, pause every dispatch, and send below the rate that failed."""
        reserved = permit.reserved
        self.inflight_requests -= 1
        self.inflight_tokens -= reserved
        self.rate_limited += 1
        if permit is self._probe:
            self._probe = None
        if self.tokens is not None and permit.at > self._held_at:
            # the server did not count its tokens; one sent before the last pause emptied the
            # bucket is not given back, or every 429 of a burst would let another request go
            self.tokens.level += reserved
        if info is not None:
            self._learn(info, permit, now)
        first_of_burst = now >= self.paused_until
        pause = self._pause(retry_after, info, first_of_burst)
        self.paused_until = max(self.paused_until, now + pause)
        self.slow_start = False
        self.window = float(self.ceiling)
        # One cut per congestion event, as TCP makes one per window: a 429 for a request sent
        # before the last cut was sent at the old rate, and 429s with no answer between them
        # only wait longer.
        knows_a_rate = self.requests is not None or self.pace.answered_lately(now)
        if self.pace.new_event(permit.at) and self.shape is not Shape.WINDOW and self.fixed_rpm is None \
                and knows_a_rate and not self.shared:  # no answer yet: no rate to cut from, only the pause
            if self.requests is None:
                # the burst that ran into the limit is still answering: its answers are the rate
                self._first_cut_by = self._first_cut_by or now + FIRST_CUT_WAIT_S
            else:
                self.requests = self.pace.cut(self.requests, now)
        if first_of_burst:
            for bucket in (self.requests, self.tokens):
                if bucket is not None:
                    bucket.hold(self.paused_until)
            self.pace.resume_at(self.paused_until)
            self._held_at = now

    def _first_cut(self, now: float) -> bool:
        """The first cut with no rate known, made once the burst that met the limit has answered
        (or after FIRST_CUT_WAIT_S): from the answers of the last second. True once made."""
        assert self._first_cut_by is not None
        if self.inflight_requests > 0 and now < self._first_cut_by:
            return False
        self._first_cut_by = None
        self.rpm_source = RateSource.LEARNED
        self.requests = self.pace.first_cut(self.inflight_requests, now)
        if now < self.paused_until:
            self.requests.hold(self.paused_until)
        return True

    def _pause(self, retry_after: float | None, info: RateHeaders | None, first_of_burst: bool) -> float:
        if retry_after is not None:
            self._silent = 0
            self.shape = Shape.WINDOW if retry_after >= WINDOW_WAIT_S else Shape.BUCKET
            return retry_after
        resets = [r for r in (info.reset_requests, info.reset_tokens) if r] if info is not None else []
        if resets:
            return min(resets)
        if first_of_burst:
            self._silent += 1
        return min(MAX_SILENT_PAUSE_S, SILENT_PAUSE_S * 2 ** (self._silent - 1))

    def _learn(self, info: RateHeaders, permit: Permit, now: float) -> None:
        if self.fixed_rpm is None and info.limit_requests:
            self._stated_rpm(float(info.limit_requests), now)
        if self.fixed_tpm is None and info.limit_tokens:
            target = float(info.limit_tokens)
            if self.tokens is None:
                self.tokens = Bucket(target, now, full=False)
            elif self.tokens.per_minute != target:
                self.tokens.set_per_minute(target, now)
            self.tpm_source = RateSource.HEADERS
            self._known(now)
        # The server counted up to this request; what we sent after it is not in its count.
        if self.requests is not None and info.remaining_requests is not None and not self.shared:
            # the deficit is read as the server's short bucket only once a 429 showed its burst is
            # short (a server whose burst is the whole minute has deficits far past ours)
            short = self.rate_limited > 0
            self.requests.sync(info.remaining_requests, self._sent - permit.sent_before - 1, now,
                               info.limit_requests if short else None, info.reset_requests)
            if self.rpm_source is RateSource.HEADERS and self.limit_rpm and self.share.applies:
                share = self.share.ours(self.limit_rpm, info.remaining_requests, permit.at)
                if share < self.requests.per_minute:
                    self.requests.set_per_minute(share, now)
            if self.shape is Shape.WINDOW and info.reset_requests and info.remaining_requests <= 0:
                self.paused_until = max(self.paused_until, now + info.reset_requests)  # spent: wait it out
        if self.tokens is not None and info.remaining_tokens is not None and not self.shared:
            sent_after = self._sent_tokens - permit.tokens_before - permit.reserved
            self.tokens.sync(info.remaining_tokens, sent_after, now,
                             info.limit_tokens if self.rate_limited else None, info.reset_tokens)

    def stated(self, rpm: float | None, tpm: float | None, now: float) -> None:
        """Limits another process learned (shared limits), taken as if the headers said them."""
        info = RateHeaders(limit_requests=int(rpm) if rpm else None, limit_tokens=int(tpm) if tpm else None)
        self._learn(info, Permit(0, self._sent, self._sent_tokens, now), now)

    def _stated_rpm(self, limit: float, now: float) -> None:
        if self.limit_rpm == limit and self.rpm_source is RateSource.HEADERS:
            return
        self.limit_rpm = limit
        if self.requests is None:
            # half the server's burst: a job alone loses little of it, two starting at once on
            # one key do not both take all of it
            self.requests = Bucket(limit, now)
            self.requests.level = self.requests.capacity / 2
        elif self.requests.per_minute > limit or self.rpm_source is not RateSource.HEADERS:
            self.requests.set_per_minute(min(limit, self.requests.per_minute) if self.pace.cut_rpm else limit, now)
        self.rpm_source = RateSource.HEADERS
        self._known(now)

    def _known(self, now: float) -> None:
        """A stated limit ends slow start: the buckets pace from here."""
        self.slow_start = False
        self.window = float(self.ceiling)
