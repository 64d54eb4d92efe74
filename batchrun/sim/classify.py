"""The simulator's answer to a prompt asking for a JSON classification of a support ticket, or
for the sentiment of a review.

So that the quick start's run means something, a prompt that asks for JSON with a `category`
(and maybe an `urgency`) gets one chosen by keywords of the ticket, in English and Spanish: the
same ticket always gets the same answer, and a refund is billing, a parcel is shipping.
"""

from __future__ import annotations

import re

import orjson

# First match wins: thanks before complaints, money before everything it may mention.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("feedback", ("thank", "gracias", "great service", "excelente", "helpful", "solved", "resuelto")),
    ("billing", ("refund", "reembolso", "charged", "cobraron", "cobro", "invoice", "factura", "vat", "nif",
                 "discount", "descuento", "coupon", "payment", "pago", "price", "precio")),
    ("account", ("cancel", "account", "cuenta", "suspended", "suspendid", "renewal", "renovación",
                 "plan ")),
    ("technical", ("password", "contraseña", "app", "aplicación", "button", "botón", "crash", "se cierra",
                   "sync", "logs me out", "error", "bug", "firefox", "chrome", "login", "correos")),
    ("shipping", ("order", "pedido", "parcel", "package", "paquete", "deliver", "entregado", "tracking",
                  "customs", "aduana", "shipping", "envío", "address", "dirección", "arrived", "llegó")),
)
HIGH = ("twice", "dos veces", "suspended", "urgent", "urgente", "asap", "immediately", "nothing is",
        "no lo he recibido", "never arrive", "no me llegan", "loses", "pierde", "incompleto", "missing")
LOW = ("can i", "¿puedo", "i'd like", "quiero", "would like", "how do i", "¿cómo")
# Where a template hands over the ticket: the text after the last of these is what is classified.
_MARKERS = re.compile(r"\b(?:ticket|text|message|review|mensaje)\s*:", re.I)
_BRACES = re.compile(r"\{[^{}]*\}")


# Sentiment words, English and Spanish; a review's answer is the side with more of them.
POSITIVE = ("love", "great", "excellent", "excelente", "perfect", "perfecto", "happy", "recommend", "recomiendo",
            "works well", "fast", "rápido", "good", "bueno", "buena", "gracias", "thank", "amazing", "best",
            "clear", "lasts", "fácil", "as described")
NEGATIVE = ("stopped working", "broke", "broken", "disappoint", "terrible", "awful", "worst", "bad", "malo",
            "slow", "lento", "never", "nunca", "refund", "reembolso", "cracked", "damaged", "waste", "useless",
            "not work", "no funciona", "poor", "mediocre", "very hot", "más pequeña", "smaller", "too small")


def classification(prompt: str, system: str | None = None) -> str | None:
    """A JSON answer when the prompt asks for a category as JSON, a sentiment word when it asks
    for sentiment, else None."""
    asked = f"{system or ''} {prompt}".lower()
    if "sentiment" in asked and "json" not in asked:
        return _sentiment(_ticket(prompt).lower(), asked)
    if "json" not in asked or "category" not in asked:
        return None
    text = _ticket(prompt).lower()
    category = next((name for name, words in CATEGORIES if any(_has(text, w) for w in words)), "other")
    answer = {"category": category}
    if "urgency" in asked:
        answer["urgency"] = _urgency(text, category)
    return orjson.dumps(answer).decode()


def _ticket(prompt: str) -> str:
    """The ticket in a filled template: past its last marker, without the JSON example."""
    found = list(_MARKERS.finditer(prompt))
    return prompt[found[-1].end():] if found else _BRACES.sub(" ", prompt)


def _has(text: str, word: str) -> bool:
    # short words as whole words: "app" is not in "happy"
    return re.search(rf"\b{re.escape(word)}", text) is not None if len(word) <= 4 else word in text


def _urgency(text: str, category: str) -> str:
    if category == "feedback" or any(w in text for w in LOW):
        return "low"
    return "high" if any(w in text for w in HIGH) else "medium"


def _sentiment(text: str, asked: str) -> str:
    """positive or negative by the words of the text; mixed (or neutral) when they tie."""
    good = sum(1 for w in POSITIVE if _has(text, w))
    bad = sum(1 for w in NEGATIVE if _has(text, w))
    if good > bad:
        return "positive"
    if bad > good:
        return "negative"
    return "mixed" if "mixed" in asked and good else "neutral"
