"""The prompts: the AudioSetCaps questions (verbatim) and our instructions to caption writers."""

from __future__ import annotations

import re
from typing import Any

QUESTIONS: tuple[str, str, str] = (
    "Describe this audio according to the sounds in it.",
    "Based on the QAs, give some information about the speech, such as the emotion of the "
    "speaker, the gender of the speaker, and the spoken language, only if speech is present "
    "in this audio.",
    "Based on the QAs, give some information about the music, such as music genre and music "
    "instruments, only if music is present in this audio.",
)

# Bumped whenever QUESTIONS or a writer prompt changes; recorded with every row.
PROMPT_VERSION = "audiosetcaps-1+writer-2"

# Our own wording of the recipe's instruction to the caption writer (an LLM).
WRITER_SYSTEM = (
    "You write captions for sound recordings. You receive a crowd worker's answers about one "
    "audio clip: what sounds it holds, and, if present, what the speech and the music are "
    "like. Reply with exactly one caption: a single English sentence of at most 25 words, in "
    "the present tense, that says what can be heard, in the order it happens. Do not quote or "
    "report what anyone says, do not name people, do not list category labels, and do not "
    "start with 'This audio', 'There is' or 'You can hear'. Reply with the caption only."
)

# A speech or music answer that says there is none is left out of the writer's prompt,
# as the recipe does, so the writer cannot mention what is absent.
_TOPIC_WORDS = {"speech": r"speech|speaking|speakers?|spoken|voices?|talking|words",
                "music": r"music|musical|singing|songs?|melody|instruments?"}
# What "... is not present" may follow: the thing itself, not a property of it ("the
# speaker's emotion is not determined" says nothing about whether there is speech).
_TOPIC_ITSELF = {"speech": r"speech|voices?|talking", "music": r"music|singing|songs?"}


def says_absent(answer: str, topic: str) -> bool:
    """Whether a speech or music answer (topic "speech" or "music") says there is none."""
    words, itself = _TOPIC_WORDS[topic], _TOPIC_ITSELF[topic]
    pattern = (rf"\b(no|not any|without|absent|lacks?|none)\b[^.]{{0,40}}\b({words})\b"
               rf"|\b({itself})\b[^.]{{0,30}}\b(is|are) (not|absent)\b|^\s*(no|none)\b")
    return re.search(pattern, answer, flags=re.IGNORECASE) is not None


def writer_message(answers: tuple[str, str, str]) -> str:
    """The user message for a caption writer: the Q&A, minus speech/music answers that say
    there is none."""
    lines = [f"Question 1: {QUESTIONS[0]}", f"Answer 1: {answers[0].strip()}"]
    for k, topic in ((1, "speech"), (2, "music")):
        if not says_absent(answers[k], topic):
            lines += [f"Question {k + 1}: {QUESTIONS[k]}", f"Answer {k + 1}: {answers[k].strip()}"]
    return "\n".join(lines)


def answers_in(message: str) -> tuple[str, str, str] | None:
    """The answers of a message made by writer_message (missing ones become ''), or None."""
    found = dict(re.findall(r"^Answer ([123]): (.*)$", message, flags=re.MULTILINE))
    if "1" not in found:
        return None
    return (found["1"], found.get("2", ""), found.get("3", ""))


# A caption longer than this is not a caption, however the writer was prompted (at most 25
# words): a paragraph, a list, or a reply that was never an answer to the prompt.
MAX_CAPTION_WORDS = 60
MAX_CAPTION_CHARS = 400
# Reasoning models served without a reasoning parser reply "<think>...</think> answer".
_THINKING = re.compile(r"^\s*<think>.*?</think>", flags=re.DOTALL | re.IGNORECASE)
_MARKUP = re.compile(r"<\s*/?\s*[a-zA-Z!][^>]*>")


def clean_caption(text: str) -> str:
    """An LLM reply reduced to its caption: first non-empty line after any <think> block,
    without a 'Caption:' label or wrapping quotes."""
    text = _THINKING.sub("", text)
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^(caption|answer)\s*:\s*", "", line, flags=re.IGNORECASE)
    return line.strip().strip('"\u201c\u201d\'').strip()


def reply_problem(text: str) -> str | None:
    """Why a model's reply cannot be an answer or a caption, or None: an error page (HTML,
    from a gateway in front of the model) is neither."""
    if _MARKUP.search(text):
        return f"markup, not a sentence: {text[:80]!r}"
    return None


def caption_problem(caption: str) -> str | None:
    """Why a cleaned reply cannot be stored as a caption, or None. A server's error page
    or a runaway reply is asked again or recorded, never kept as a caption."""
    if not caption.strip():
        return "empty"
    if reply_problem(caption):
        return reply_problem(caption)
    words = len(caption.split())
    if words > MAX_CAPTION_WORDS or len(caption) > MAX_CAPTION_CHARS:
        return f"too long for a caption ({words} words, {len(caption)} characters)"
    return None


def message_text(content: Any) -> str:
    """The text of a chat message's content: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(str(p.get("text", "")) for p in parts)
    return ""
