"""Answers that differ for a chosen share of prompts: a second simulator standing in for a new
model that disagrees with the old one now and then, for shadow and canary rehearsals.

Which prompts differ is a hash of the prompt, so two runs (and a test counting the truth)
agree on it."""

from __future__ import annotations

import hashlib

import orjson

from batchrun.sim.answers import LABELS


def differs(prompt: str, share: float) -> bool:
    """Does this prompt get the variant answer?"""
    if share <= 0.0:
        return False
    digest = hashlib.blake2b(prompt.encode(), digest_size=8, person=b"variant").digest()
    return int.from_bytes(digest, "big") / 2.0**64 < share


def vary(body: bytes) -> bytes:
    """The same chat answer with another reply: the next label, or the reply marked as a variant."""
    doc = orjson.loads(body)
    message = doc["choices"][0]["message"]
    text = message.get("content") or ""
    obj = _object(text)
    if text in LABELS:
        message["content"] = LABELS[(LABELS.index(text) + 1) % len(LABELS)]
    elif obj is not None and obj.get("urgency") in _URGENCY:  # a classification: another urgency, still JSON
        obj["urgency"] = _URGENCY[(_URGENCY.index(obj["urgency"]) + 1) % len(_URGENCY)]
        message["content"] = orjson.dumps(obj).decode()
    else:
        message["content"] = text + " (variant)"
    return orjson.dumps(doc)


_URGENCY = ("low", "medium", "high")


def _object(text: str) -> dict[str, object] | None:
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None
