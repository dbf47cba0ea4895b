"""Greedy decoding (the paper's) and beam search, for any model of models.py."""

from __future__ import annotations

import torch
from torch import nn

from sonicaps.captioning.vocab import BOS, EOS


def _select(tensors: tuple[torch.Tensor, ...], index: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return tuple(t.index_select(0, index) for t in tensors)


@torch.no_grad()
def greedy(model: nn.Module, batch: dict[str, torch.Tensor], max_len: int) -> list[list[int]]:
    """The most likely next word at every step, for all clips of the batch at once."""
    enc = model.encode(batch)
    state = model.init_state(enc)
    n = enc[0].shape[0]
    tokens = torch.full((n,), BOS, dtype=torch.long)
    out = torch.zeros(n, max_len, dtype=torch.long)
    done = torch.zeros(n, dtype=torch.bool)
    for t in range(max_len):
        logits, state = model.step(enc, state, tokens)
        tokens = logits.argmax(dim=1)
        tokens[done] = EOS
        out[:, t] = tokens
        done |= tokens == EOS
        if done.all():
            break
    return [row[: row.index(EOS)] if EOS in row else row for row in out.tolist()]


@torch.no_grad()
def beam(model: nn.Module, batch: dict[str, torch.Tensor], max_len: int, size: int = 5) -> list[list[int]]:
    """Beam search per clip; finished captions are ranked by mean log-probability per
    word, so the search does not favour short captions."""
    enc_all = model.encode(batch)
    results = []
    for clip in range(enc_all[0].shape[0]):
        enc = _select(enc_all, torch.tensor([clip]))
        state = model.init_state(enc)
        seqs: list[list[int]] = [[]]
        scores = torch.zeros(1)
        tokens = torch.tensor([BOS])
        finished: list[tuple[float, list[int]]] = []
        for t in range(max_len):
            beams = len(seqs)
            logits, state = model.step(_select(enc, torch.zeros(beams, dtype=torch.long)), state, tokens)
            total = (scores.unsqueeze(1) + logits.log_softmax(dim=1)).view(-1)
            top = total.topk(min(size, total.numel()))
            vocab = logits.shape[1]
            keep_seqs, keep_idx, keep_scores, keep_tokens = [], [], [], []
            for score, flat in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                parent, word = divmod(flat, vocab)
                if word == EOS:
                    finished.append((score / (t + 1), seqs[parent]))
                else:
                    keep_seqs.append([*seqs[parent], word])
                    keep_idx.append(parent)
                    keep_scores.append(score)
                    keep_tokens.append(word)
            if not keep_seqs or len(finished) >= size:
                break
            seqs, scores = keep_seqs, torch.tensor(keep_scores)
            state = _select(state, torch.tensor(keep_idx))
            tokens = torch.tensor(keep_tokens)
        else:
            finished += [(s / max_len, q) for s, q in zip(scores.tolist(), seqs, strict=True)]
        if not finished:
            finished = [(s / max_len, q) for s, q in zip(scores.tolist(), seqs, strict=True)]
        results.append(max(finished, key=lambda f: f[0])[1])
    return results
