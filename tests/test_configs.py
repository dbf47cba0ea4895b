"""Every config shipped under configs/ runs end to end through the CLI, as shipped, with tiny
stand-ins swapped in for its model ids (the same code path a GPU user takes) and its
servers started here on 127.0.0.1. A config that fails as shipped fails this test."""

from __future__ import annotations

import logging
import shutil
import tomllib
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sonicaps.pipeline.store import Store

CONFIGS = Path(__file__).parent.parent / "configs"
SHIPPED = sorted(p.name for p in CONFIGS.iterdir() if p.suffix in (".toml", ".yaml", ".yml"))
RETRIEVAL_RUN = Path(__file__).parent.parent / "src" / "sonicaps" / "data" / "retrieval"
# Hub ids in the configs -> the tiny model of the same architecture (tiny_models_dir names).
STAND_INS = {
    "Qwen/Qwen2-Audio-7B-Instruct": "qwen2_audio",
    "Qwen/Qwen2.5-Omni-7B": "qwen2_5_omni",
    "Qwen/Qwen3-Omni-30B-A3B-Captioner": "qwen3_omni_moe",
    "nvidia/audio-flamingo-3-hf": "audioflamingo3",
    "mistralai/Voxtral-Mini-3B-2507": "voxtral",
    "google/gemma-3n-E4B-it": "gemma3n",
    "microsoft/Phi-4-multimodal-instruct": "phi4_multimodal",
    "ibm-granite/granite-speech-3.3-8b": "granite_speech",
    "mistralai/Mistral-7B-Instruct-v0.3": "chat_lm",
    "laion/clap-htsat-unfused": "clap",
}


def read(path: Path) -> dict:
    return tomllib.loads(path.read_text()) if path.suffix == ".toml" else yaml.safe_load(path.read_text())


# Generation length of a tiny stand-in: random weights rarely stop early, so a shipped
# 128-256 tokens would only time the tiny model's decoding (the code path is the same).
STAND_IN_TOKENS = 8


def swap_models(cfg: dict, tiny) -> dict:
    """The config with each known hub id replaced by its tiny stand-in (and that stage's
    max_new_tokens capped for it); nothing else."""
    for stage in ("ask", "write", "check"):
        sec = cfg.get(stage, {})
        for key in ("model", "text_model"):
            if sec.get(key) in STAND_INS and sec.get("backend") != "openai":  # served names stay
                sec[key] = tiny(STAND_INS[sec[key]])
                if "max_new_tokens" in sec:
                    sec["max_new_tokens"] = min(sec["max_new_tokens"], STAND_IN_TOKENS)
    return cfg


@pytest.fixture(scope="module")
def folder(examples, tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("configs_in")
    for name in ("cow.mp3", "woman_speaking.flac"):
        shutil.copy(examples / name, src / name)
    return src


def test_every_config_is_covered():
    assert {"transformers.yaml", "vllm.yaml", "audio-flamingo-3.yaml", "qwen2.5-omni.yaml",
            "qwen3-omni-captioner.yaml", "serve-client.yaml", "voxtral.yaml", "gemma-3n.yaml",
            "phi-4-multimodal.yaml", "granite-speech.yaml"} <= set(SHIPPED)
    # Every audio-language family has a shipped config (so the test below runs it).
    import tiny_audio_lms

    shipped_ids = {read(CONFIGS / n).get(s, {}).get("model") for n in SHIPPED for s in ("ask", "write")}
    assert set(tiny_audio_lms.BUILDERS) <= {STAND_INS.get(i) for i in shipped_ids}


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_config_captions_a_plain_folder(name, folder, tiny_models_dir, tmp_path, request, caplog):
    from sonicaps.cli import main

    cfg = swap_models(read(CONFIGS / name), tiny_models_dir)
    args: list[str] = []
    servers = []
    if name == "audiosetcaps.toml":  # the released checkpoints' layout, seeded weights
        released = request.getfixturevalue("released_asc")
        cfg["write"].update(checkpoint=str(released["cap"]), text_model=released["bart"])
        cfg["check"].update(checkpoint=str(released["ret"]), text_model=released["roberta"])
    if cfg.get("check", {}).get("run"):  # a train-retrieval run: the shipped model's own files
        cfg["check"]["run"] = str(RETRIEVAL_RUN)
    if name == "ray-cluster.toml":  # joins the session's cluster, as --address auto would
        from sonicaps.pipeline.config import from_dict
        from sonicaps.pipeline.ray_runner import check_resources

        request.getfixturevalue("ray_cluster")
        check_resources(from_dict(cfg).ray, {"CPU": 8.0})  # the shipped pools fit the test cluster
        # One actor per pool and one decode task: each actor loads its stage's models, which
        # is what costs here; two clips need no more (the Ray tests run larger pools).
        cfg["ray"].update(decode_tasks=1)
        cfg["ray"]["ask"]["size"] = cfg["ray"]["write"]["size"] = 1
        args = ["--engine", "ray"]
    served = [s for s in ("ask", "write") if cfg.get(s, {}).get("backend") == "openai"]
    if served:  # a real OpenAI-compatible server on 127.0.0.1 for the stages that call one
        from sonicaps.pipeline.config import from_dict
        from sonicaps.serve import BackgroundServer, build_service, create_app

        models = {"ask": {"backend": "builtin"}, "write": {"backend": "builtin"}}
        if cfg["ask"].get("model") in STAND_INS:  # vllm.yaml: the served models' architectures
            asker = tiny_models_dir(STAND_INS[cfg["ask"]["model"]])
            models = {"ask": {"backend": "transformers", "model": asker,
                              "max_new_tokens": 8},
                      "write": {"backend": "transformers", "model": tiny_models_dir("chat_lm"),
                                "max_new_tokens": 12}}
        server = BackgroundServer(create_app(build_service(from_dict(models)))).__enter__()
        servers.append(server)
        for s in served:
            cfg[s]["base_url"] = server.url
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg) if path.suffix != ".toml" else _toml(cfg))
    out = tmp_path / "out"
    try:
        with caplog.at_level(logging.WARNING):
            code = main(["caption", str(folder), "-o", str(out), "--config", str(path), "--quiet",
                         *args])
    finally:
        for s in servers:
            s.__exit__(None, None, None)
    assert code == 0
    files = list(out.glob("part-*.parquet"))
    rows = pd.concat(pd.read_parquet(f) for f in files) if files else pd.DataFrame(columns=["id"])
    fails = Store(out).read_failures()
    assert sorted([*rows["id"], *(f["id"] for f in fails)]) == ["cow_0_10", "woman_speaking_0_10"]
    assert len(rows) > 0, fails  # random models may fail a clip with BadOutput, not all of them
    assert all(f["error"] == "BadOutput" for f in fails), fails
    uncalibrated = cfg.get("check", {}).get("backend") == "clap" and "accept_threshold" not in cfg.get(
        "pipeline", {})
    if uncalibrated:  # no threshold: scores kept, accepted left null, one warning
        assert rows["accepted"].isna().all() and set(rows["check_rule"]) == {"uncalibrated"}
        assert rows["check_score"].notna().all()
        warned = [r for r in caplog.records if "no calibrated threshold" in r.getMessage()]
        assert len(warned) <= 1
    else:
        assert rows["accepted"].notna().all()


def _toml(cfg: dict) -> str:
    """A flat TOML writer for these configs (tomllib reads only; sections of scalars)."""
    import json

    lines: list[str] = []

    def section(prefix: str, d: dict) -> None:
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict)}
        if prefix:
            lines.append(f"[{prefix}]")
        lines.extend(f"{k} = {json.dumps(v)}" for k, v in scalars.items())
        for k, v in d.items():
            if isinstance(v, dict):
                section(f"{prefix}.{k}" if prefix else k, v)

    section("", cfg)
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def released_asc(tmp_path_factory):
    """AudioSetCaps' released checkpoint layout with seeded weights and tiny text sides."""
    import torch
    from test_audiosetcaps import TINY_BART, TINY_ROBERTA, fake_state_dict, keys

    root = tmp_path_factory.mktemp("asc_cfg")
    cap, ret = root / "cap.pt", root / "ret.pt"
    torch.save({"model": fake_state_dict(keys("htsat_bart_tiny_keys")), "epoch": 1, "beam_size": 2}, cap)
    torch.save({"model": fake_state_dict(keys("htsat_roberta_tiny_keys")), "epoch": 1}, ret)
    return {"cap": cap, "ret": ret, "bart": TINY_BART, "roberta": TINY_ROBERTA}
