"""What a generative chat model is told, and how its answer is tied back to the excerpts."""

from __future__ import annotations

import re
from collections.abc import Sequence

from chronos_pipeline.lib.providers.base import Passage
from chronos_pipeline.lib.timefmt import timestamp

SYSTEM_PROMPT = (
    "You answer a student's question using only the lecture excerpts provided. Each excerpt "
    "starts with its time as [mm:ss] and the lecture's title. Cite every claim with the "
    "[mm:ss] time of the excerpt it comes from. If the excerpts do not answer the question, "
    "say so plainly instead of guessing. Be concise."
)
_TIME = re.compile(r"\[(\d+(?::\d{2}){1,2})\]")


def context_block(passages: Sequence[Passage]) -> str:
    return "\n\n".join(
        f"[{timestamp(p.start_s)}] ({p.title})\n{p.text}" for p in passages
    )


def cited(answer: str, passages: Sequence[Passage]) -> list[Passage]:
    """The passages whose [mm:ss] the answer mentions (all of them if it cites none)."""
    times = set(_TIME.findall(answer))
    chosen = [p for p in passages if timestamp(p.start_s) in times]
    return chosen or list(passages)
