"""Conversation history and the local rewrite of follow-ups; claims of a generative answer."""

from __future__ import annotations

from chronos_pipeline.lib.citations import claims_of
from chronos_pipeline.lib.conversation import (
    CHARS_PER_TOKEN,
    recent_turns,
    standalone_question,
)
from chronos_pipeline.lib.providers.base import Turn
from chronos_pipeline.lib.providers.prompt import alternating


def words(text: str) -> int:
    return len(text.split())


def test_history_is_bounded_by_tokens_not_turns() -> None:
    short = [Turn("user", "one two"), Turn("assistant", "three four")] * 10
    kept = recent_turns(short, words, budget=9)
    # Four whole turns of two tokens fit in nine; they are the newest, oldest first.
    assert kept == short[-4:]
    long_answer = [Turn("user", "What is RSI?"), Turn("assistant", "word " * 1000)]
    kept = recent_turns(long_answer, words, budget=300, per_turn=100)
    # One long answer is cut to its beginning rather than pushing the question out.
    assert [t.role for t in kept] == ["user", "assistant"]
    assert words(kept[1].text) <= 101 and kept[1].text.endswith("…")


def test_a_megabyte_turn_is_cut_before_its_tokens_are_counted() -> None:
    # A client sending the conversation itself sent 9 MB in one turn: tokenizing it whole
    # held the shared tokenizer (and every other question) for 15 s.
    counted: list[int] = []

    def tokens(text: str) -> int:
        counted.append(len(text))
        return words(text)

    kept = recent_turns([Turn("assistant", "word " * 2_000_000), Turn("user", "What is RSI?")],
                        tokens, budget=300, per_turn=100)
    assert max(counted) <= 100 * CHARS_PER_TOKEN + 2
    assert [t.role for t in kept] == ["assistant", "user"] and kept[0].text.endswith("…")


def test_a_follow_up_borrows_the_previous_questions_topic_words() -> None:
    history = [Turn("user", "Below what RSI number is a stock oversold?"),
               Turn("assistant", "[02:14] \"a reading below thirty is labelled oversold\"")]
    rewritten = standalone_question("Does that mean I should buy immediately?", history)
    assert rewritten.startswith("Does that mean I should buy immediately?")
    assert {"rsi", "number", "stock", "oversold"} <= set(rewritten.lower().split())
    assert standalone_question("What is RSI?", []) == "What is RSI?"


def test_a_new_topic_in_a_session_is_not_dragged_back_to_the_old_one() -> None:
    history = [Turn("user", "Below what RSI number is a stock oversold?"),
               Turn("assistant", "[02:14] \"a reading below thirty is labelled oversold\"")]
    question = "How is the load factor of a hash table defined?"
    assert standalone_question(question, history) == question


def test_chat_turns_alternate_from_the_user_and_end_before_the_new_question() -> None:
    turns = [Turn("assistant", "hello"), Turn("user", "a"), Turn("user", "b"),
             Turn("assistant", "c"), Turn("user", "unanswered")]
    assert alternating(turns) == [Turn("user", "a\n\nb"), Turn("assistant", "c")]


def test_each_cited_sentence_of_an_answer_is_a_claim_with_its_times() -> None:
    answer = ("RSI was introduced by Welles Wilder in 1978 [01:52]. It uses fourteen periods "
              "[02:07][02:10].\nOversold is below thirty. [02:14]\nNo citation here.")
    claims = claims_of(answer)
    assert [(c.text, c.times) for c in claims] == [
        ("RSI was introduced by Welles Wilder in 1978.", ["01:52"]),
        ("It uses fourteen periods.", ["02:07", "02:10"]),
        ("Oversold is below thirty.", ["02:14"]),
    ]
