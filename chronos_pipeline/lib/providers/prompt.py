"""What a generative chat model is told, and how its answer is tied back to the excerpts."""

from __future__ import annotations

import re
from collections.abc import Sequence

from chronos_pipeline.lib.providers.base import Passage, Turn
from chronos_pipeline.lib.timefmt import timestamp

SYSTEM_PROMPT = (
    "You answer a student's question using only the lecture excerpts provided. Each excerpt "
    "starts with its time as [mm:ss] and the lecture's title. Cite every claim with the "
    "[mm:ss] time of the excerpt it comes from. If the excerpts do not answer the question, "
    "say so plainly instead of guessing. Earlier turns of the conversation, when there are "
    "any, only tell you what the question refers to. Be concise."
)
REWRITE_SYSTEM = (
    "Rewrite the student's last question so that it can be understood without the "
    "conversation: replace pronouns and references such as 'it', 'that' or 'the other one' "
    "with what they refer to. Keep the question's meaning and wording otherwise. Reply with "
    "the rewritten question only, on one line."
)
TITLE_SYSTEM = (
    "Give this conversation a short title of at most six words, from the student's first "
    "question. Reply with the title only, without quotes."
)
REWRITE_MAX_TOKENS = 100
TITLE_MAX_TOKENS = 20
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


def alternating(history: Sequence[Turn]) -> list[Turn]:
    """Turns as chat APIs take them: starting with the user, roles alternating, ending with
    the assistant (the new question follows). Same-role neighbours are joined."""
    turns: list[Turn] = []
    for turn in history:
        if turn.role not in ("user", "assistant") or not turn.text.strip():
            continue
        if not turns and turn.role != "user":
            continue
        if turns and turns[-1].role == turn.role:
            turns[-1] = Turn(turn.role, f"{turns[-1].text}\n\n{turn.text}")
        else:
            turns.append(turn)
    if turns and turns[-1].role == "user":
        turns.pop()
    return turns


def rewrite_prompt(question: str, history: Sequence[Turn]) -> str:
    lines = [f"{'Student' if t.role == 'user' else 'Assistant'}: {t.text}" for t in history]
    return "Conversation:\n" + "\n".join(lines) + f"\n\nLast question: {question}"


def one_line(text: str, limit: int) -> str:
    """A completion cut to its first line, without surrounding quotes, at most ``limit``."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line.strip("\"'“”").strip()[:limit]
