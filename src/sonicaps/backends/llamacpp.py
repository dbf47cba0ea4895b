"""The write stage on a local GGUF chat model through llama.cpp (xllamacpp), in process.

The recipe's LLM stage without a server: the recipe's writing prompt (prompts.py), a few
AudioCaps-style examples as earlier chat turns, and parallel llama.cpp slots. Small models
(the packaged SmolLM2-135M) copy times, list labels and add sources they were never told
of, so every reply passes guards before it is used:

- a grammar lets the model write only one plain sentence (no digits, colons or lines);
- `problems()` rejects times or numbers, label lists, over-long replies, speech or music the
  answers say is absent, and any sound source the answers do not name (the faithfulness
  judge's own reading of source names, `sonicaps.faithfulness.mentions`);
- a rejected reply is sampled again; when every try fails, the grammar writer writes the
  caption and the row's `writer` column says so, with the reason.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

from sonicaps.backends.base import BadOutput
from sonicaps.clip import Answers, Clip
from sonicaps.faithfulness import MUSIC_WORDS, SPEECH_WORDS, mentions, subject_key
from sonicaps.prompts import WRITER_SYSTEM, clean_caption, says_absent, writer_message
from sonicaps.weights import SMOLLM2_GGUF, locate

# One plain sentence: a capital, lower-case words with single spaces and commas, a full stop.
GRAMMAR = "root ::= [A-Z] [a-z']* (\",\"? \" \" [a-z']+)* \".\""
MAX_WORDS = 30
# Openings the AudioCaps guidelines (and the writer prompt) rule out.
BANNED_OPENINGS = re.compile(r"(the|this) (audio|clip|recording)\b|there (is|are)\b|(you|we) can hear\b|"
                             r"it (is|appears|sounds)\b", re.IGNORECASE)

_NO_SPEECH = "There is no speech in this audio."
_NO_MUSIC = "There is no music in this audio."
# Few-shot examples in the built-in asker's answer style, captions in the AudioCaps style.
EXAMPLES: tuple[tuple[tuple[str, str, str], str], ...] = (
    (("A dog barks, twice. A man speaks.", "Speech is present, spoken by a man (male voice).",
      _NO_MUSIC), "A dog barks twice, followed by a man speaking."),
    (("Rain falls. Thunder rumbles.", _NO_SPEECH, _NO_MUSIC), "Rain falls steadily as thunder rumbles."),
    (("Music plays. A woman sings.", _NO_SPEECH,
      "Music is present; instruments: Guitar, Drum; genre: possibly pop music."),
     "A woman sings over pop music with guitar and drums."),
    (("Birds chirp. A car passes by.", _NO_SPEECH, _NO_MUSIC), "Birds chirp while a car passes by."),
)

_TIMES = re.compile(r" from \d+(?:\.\d+)? s to \d+(?:\.\d+)? s")
_ABOUT = re.compile(r"Speech is present for about \d+ seconds?, spoken by")
_UNDETERMINED = re.compile(r"\s*The speaker's [a-z ]+ (?:is|are) not determined[^.]*\.")


def condensed(answer: str) -> str:
    """An answer without its timings and boilerplate. The order of events stays in the order
    of the sentences; numbers are not caption material, and small models copy them."""
    answer = _TIMES.sub("", answer)
    answer = _ABOUT.sub("Speech is present, spoken by", answer)
    return _UNDETERMINED.sub("", answer).strip()


def messages(answers: Answers, system: str = WRITER_SYSTEM) -> list[dict[str, str]]:
    chat = [{"role": "system", "content": system}]
    for texts, caption in EXAMPLES:
        chat += [{"role": "user", "content": writer_message(texts)},
                 {"role": "assistant", "content": caption}]
    texts = tuple(condensed(t) for t in answers.texts)
    return chat + [{"role": "user", "content": writer_message(texts)}]  # type: ignore[arg-type]


@cache
def source_names() -> frozenset[tuple[str, ...]]:
    """Every AudioSet class name (YAMNet's 521, each comma-separated name on its own) as a
    subject: a small model's "a storm" or "a band" is a source too, not only the words the
    project's own writers use."""
    from sonicaps.backends.builtin.yamnet import class_names

    people = ("human", "person", "people", "man", "woman", "child", "children", "baby", "boy",
              "girl", "crowd", "audience", "speaker", "singer", "band", "orchestra")
    return frozenset({subject_key(part) for name in class_names() for part in name.split(", ") if part}
                     | {(w,) for w in people})


def problems(caption: str, answers: Answers) -> list[str]:
    """Why a reply cannot be a caption for these answers (empty: it can)."""
    out = []
    words = caption.split()
    if not words:
        return ["empty"]
    if "\n" in caption or re.search(r"[.!?]\s+\S", caption):
        out.append("more than one sentence")
    if re.search(r"\d|\bseconds?\b", caption):
        out.append("copies times or numbers")
    if re.search(r"[:;]", caption) or caption.count(",") >= 3:
        out.append("a label list")
    if BANNED_OPENINGS.match(caption):
        out.append("opens with a phrase captions avoid")
    if len(words) > MAX_WORDS:
        out.append(f"longer than {MAX_WORDS} words")
    vocabulary = source_names()
    told = Counter(p for _, p in mentions(" ".join(answers.texts), vocabulary))
    said = Counter(p for _, p in mentions(caption, vocabulary))
    invented = sorted(" ".join(p) for p in said if p not in told)
    if invented:
        out.append(f"names {', '.join(invented)}, which the answers do not")
    repeated = sorted(" ".join(p) for p, n in said.items() if p in told and n > told[p])
    if repeated:  # "a cow moos while a cow moos": one source said as two
        out.append(f"names {', '.join(repeated)} more often than the answers do")
    low = caption.lower()
    if SPEECH_WORDS.search(low) and (not answers.texts[1].strip() or says_absent(answers.texts[1], "speech")):
        out.append("says someone speaks; the answers say there is no speech")
    if MUSIC_WORDS.search(low) and (not answers.texts[2].strip() or says_absent(answers.texts[2], "music")):
        out.append("says there is music; the answers say there is none")
    return out


class LlamaCppWriter:
    """One caption per clip from a GGUF chat model; attempt 0 decodes greedily, each retry
    (a guard's or the check stage's) samples with its own seed."""

    def __init__(self, model: str | None = None, n_ctx: int = 8192, parallel: int = 4,
                 threads: int | None = None, n_gpu_layers: int = 0, max_new_tokens: int = 48,
                 tries: int = 3, temperature: float = 0.7, seed: int = 0, grammar: bool = True,
                 system: str = WRITER_SYSTEM) -> None:
        import xllamacpp

        path = Path(model) if model else locate(SMOLLM2_GGUF)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such GGUF file (writer option 'model')")
        omp = os.environ.get("OMP_NUM_THREADS", "")
        threads = threads or (int(omp) if omp.isdigit() and int(omp) > 0 else os.cpu_count() or 1)
        p = xllamacpp.CommonParams()
        p.model.path = str(path)
        p.n_ctx, p.n_parallel, p.n_gpu_layers = n_ctx, parallel, n_gpu_layers
        p.cpuparams.n_threads = p.cpuparams_batch.n_threads = threads
        p.warmup = False
        p.verbosity = -1
        self._server = xllamacpp.Server(p)
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="llamacpp")
        self.max_new_tokens, self.tries, self.temperature = max_new_tokens, tries, temperature
        self.seed, self.grammar, self.system = seed, grammar, system
        self.model_id = f"llamacpp:{SMOLLM2_GGUF.model_id if model is None else path.name}"
        self._fallback: Any = None
        # (clip id, caption) -> why the grammar writer wrote it: the row records it.
        self.fallbacks: dict[tuple[str, str], str] = {}

    def complete(self, chat: list[dict[str, str]], temperature: float, seed: int) -> str:
        request: dict[str, Any] = {"messages": chat, "max_tokens": self.max_new_tokens,
                                   "temperature": temperature, "seed": seed}
        if self.grammar:
            request["grammar"] = GRAMMAR
        reply = self._server.handle_chat_completions(request)
        try:
            return clean_caption(reply["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError):
            raise BadOutput(f"llama.cpp returned no completion: {str(reply)[:300]}") from None

    def _write_one(self, clip: Clip, answers: Answers, attempt: int) -> tuple[str, str | None]:
        """A caption that passes the guards, or (None, the last reason)."""
        chat = messages(answers, self.system)
        why = ""
        for k in range(self.tries):
            n = attempt * self.tries + k  # every try of every attempt draws its own sample
            text = self.complete(chat, 0.0 if n == 0 else self.temperature, self.seed + n)
            found = problems(text, answers)
            if not found:
                return text, None
            why = f"{text!r}: {'; '.join(found)}"
        return "", why

    def write(self, clips: Sequence[Clip], answers: Sequence[Answers], attempt: int) -> list[str]:
        results = list(self._pool.map(lambda ca: self._write_one(ca[0], ca[1], attempt),
                                      zip(clips, answers, strict=True)))
        out = []
        for clip, ans, (text, why) in zip(clips, answers, results, strict=True):
            if why is not None:
                if self._fallback is None:
                    from sonicaps.backends.builtin.writer import BuiltinWriter

                    self._fallback = BuiltinWriter()
                text = self._fallback.write([clip], [ans], attempt)[0]
                self.fallbacks[(clip.id, text)] = f"{self._fallback.model_id}, after {self.tries} " \
                                                  f"rejected replies, the last {why}"
            out.append(text)
        return out
