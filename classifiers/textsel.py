"""Which text of a request the route classifier sees.

The route depends mostly on what the user asks now, so the selection is, in priority order:

1. the **last user turn** (string content, or the ``text`` parts of a content array; image,
   audio and file parts are ignored). If it alone exceeds ``max_chars`` its *start* is kept:
   the instruction usually comes first, pasted material after it.
2. up to ``context_turns`` **preceding user/assistant turns**, newest first, each cut to keep
   its *end* (the part nearest the question), while the budget lasts. A follow-up such as
   "and in French?" is unclassifiable without them.
3. the **system prompt**, only if ``include_system`` (it is usually the same for every request
   of an application, so it adds little signal and often a lot of length), with what is left.

The parts are joined in conversation order, separated by blank lines, and the result never
exceeds ``max_chars``. Tool messages are skipped. Selection is a pure function of its inputs.

For ``/v1/completions``, :func:`select_prompt_text` takes ``prompt`` as a string or a list of
strings (a batch decided as one request: the prompts are joined in order, each keeping its
start, within ``max_chars``); token-id prompts carry no text and give ``""``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

SEPARATOR = "\n\n"
_SYSTEM_ROLES = frozenset({"system", "developer"})
_CONTEXT_ROLES = frozenset({"user", "assistant"})


def message_text(content: object) -> str:
    """Text of one message's ``content``: a string, or the text parts of a content array."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = [
            part["text"]
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str)
        ]
        return "\n".join(parts)
    return ""


def select_text(
    messages: Sequence[Mapping[str, object]],
    *,
    include_system: bool = False,
    context_turns: int = 1,
    max_chars: int = 2000,
) -> str:
    if max_chars <= 0:
        return ""
    last_user = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].get("role") == "user"), None)
    if last_user is None:
        return ""
    question = message_text(messages[last_user].get("content")).strip()[:max_chars]
    budget = max_chars - len(question)

    context: list[str] = []
    if context_turns > 0:
        earlier = [m for m in messages[:last_user] if m.get("role") in _CONTEXT_ROLES]
        for message in reversed(earlier[-context_turns:]):
            budget -= len(SEPARATOR)
            text = message_text(message.get("content")).strip()
            if budget <= 0:
                break
            if text:
                context.insert(0, text[-budget:])
                budget -= len(context[0])

    system = ""
    if include_system:
        system_text = "\n".join(
            message_text(m.get("content")).strip()
            for m in messages[:last_user]
            if m.get("role") in _SYSTEM_ROLES
        ).strip()
        room = budget - len(SEPARATOR)
        if system_text and room > 0:
            system = system_text[:room]

    return SEPARATOR.join(part for part in (system, *context, question) if part)


def select_prompt_text(prompt: object, *, max_chars: int = 2000) -> str:
    """Text of a ``/v1/completions`` ``prompt`` (a string or a list of strings)."""
    if isinstance(prompt, str):
        return prompt.strip()[:max_chars]
    if not isinstance(prompt, Sequence) or not all(isinstance(p, str) for p in prompt):
        return ""
    out: list[str] = []
    budget = max_chars
    for text in (str(p).strip() for p in prompt):
        if not text:
            continue
        if out:
            budget -= len(SEPARATOR)
        if budget <= 0:
            break
        out.append(text[:budget])
        budget -= len(out[-1])
    return SEPARATOR.join(out)
