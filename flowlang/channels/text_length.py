"""Text length as each channel counts it: a text and the channel's rules -> a number.

`count` in the registry says how: `characters` (code points), `utf16` (UTF-16 code units, as
LINE counts), or `weighted` (X's twitter-text: per-range weights, an emoji sequence as one
default-weight character, every URL as a fixed length). The weights are the registry's data,
handed to `twitter-text-parser`, a port of twitter-text that passes its conformance suite.
It is imported on the first weighted count: compiling its regular expressions takes 0.2–1.3 s,
which every process start (the CLI, the service's two processes) paid for nothing when no
X text was measured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flowlang.channels.registry import ChannelRules


def text_length(text: str, rules: ChannelRules) -> int:
    """How long `text` is on the channel, in the unit its `max_text` is given in."""
    if rules.count == "utf16":
        return len(text.encode("utf-16-le")) // 2
    if rules.count == "weighted" and rules.weighting is not None:
        from twitter_text import parse_tweet  # first use only: see the docstring

        options = {
            **rules.weighting.model_dump(),
            "max_weighted_tweet_length": rules.max_text,
        }
        return int(parse_tweet(text, options).weightedLength)
    return len(text)
