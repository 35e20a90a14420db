from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from classifiers.textsel import message_text, select_prompt_text, select_text

CHAT = [
    {"role": "system", "content": "You are a helpful assistant for ACME."},
    {"role": "user", "content": "Tell me about our leave policy."},
    {"role": "assistant", "content": "Employees get 25 days."},
    {"role": "user", "content": "And in France?"},
]


def test_last_user_turn_with_one_preceding_turn_by_default() -> None:
    assert select_text(CHAT) == "Employees get 25 days.\n\nAnd in France?"


def test_context_turns_and_system_prompt() -> None:
    assert select_text(CHAT, context_turns=0) == "And in France?"
    assert select_text(CHAT, context_turns=5, include_system=True) == (
        "You are a helpful assistant for ACME.\n\nTell me about our leave policy.\n\n"
        "Employees get 25 days.\n\nAnd in France?"
    )


def test_content_array_keeps_text_parts_only() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "text", "text": "this picture?"},
            ],
        }
    ]
    assert select_text(messages) == "What is in\nthis picture?"
    assert message_text(None) == ""
    assert message_text(42) == ""


def test_long_last_turn_keeps_its_start() -> None:
    question = "Summarise the following document. " + "x" * 5000
    text = select_text([{"role": "user", "content": question}], max_chars=100)
    assert text == question[:100]


def test_context_keeps_its_end_within_budget() -> None:
    messages = [
        {"role": "assistant", "content": "a" * 50 + "THE END"},
        {"role": "user", "content": "why?"},
    ]
    text = select_text(messages, max_chars=20)
    assert len(text) <= 20
    assert text.endswith("THE END\n\nwhy?")


def test_no_user_turn_gives_empty_text() -> None:
    assert select_text([{"role": "system", "content": "hi"}]) == ""
    assert select_text([]) == ""
    assert select_text(CHAT, max_chars=0) == ""


def test_tool_messages_are_skipped() -> None:
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "tool", "content": '{"temp": 3}'},
        {"role": "user", "content": "and tomorrow?"},
    ]
    assert select_text(messages) == "weather?\n\nand tomorrow?"


def test_prompt_helper() -> None:
    assert select_prompt_text("  Once upon a time ") == "Once upon a time"
    assert select_prompt_text(["first", "second"]) == "first\n\nsecond"
    assert select_prompt_text([1, 2, 3]) == ""
    assert select_prompt_text(None) == ""
    assert len(select_prompt_text(["x" * 30, "y" * 30], max_chars=40)) <= 40


_turn = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool"]), "content": st.text(max_size=300)}
)


@given(st.lists(_turn, max_size=8), st.integers(0, 5), st.booleans(), st.integers(0, 400))
def test_never_exceeds_max_chars(
    messages: list[dict[str, str]], turns: int, system: bool, limit: int
) -> None:
    text = select_text(messages, context_turns=turns, include_system=system, max_chars=limit)
    assert len(text) <= limit
