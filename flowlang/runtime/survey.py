"""What a customer's answer to a survey question is worth: a rating is a whole number on the
question's scale ("4", " 4 ", "4/5" read as 4), anything else ("7" on a 1-5 scale, "great") is
not an answer; a comment is any text that is not blank."""

from __future__ import annotations

import re

from flowlang.compiler import ir

_RATING = re.compile(r"^\s*(\d{1,2})\s*(?:/\s*\d{1,2})?\s*[.!]?\s*$")


def read_answer(question: ir.SurveyQuestion, text: str) -> int | str | None:
    """The answer's value, or None when it does not answer the question."""
    if question.kind == "comment":
        stripped = text.strip()
        return stripped or None
    found = _RATING.match(text)
    if found is None:
        return None
    value = int(found.group(1))
    low = question.low if question.low is not None else 1
    high = question.high if question.high is not None else 5
    return value if low <= value <= high else None
