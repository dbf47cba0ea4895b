"""The captioning models of the AudioCaps paper (Table 2) and a transformer.

Every model has the same decoding interface, so greedy and beam search (decode.py) and
training (train.py) treat them alike:
    enc = model.encode(batch)            # tensors, batch first
    state = model.init_state(enc)        # tensors, batch first
    logits, state = model.step(enc, state, tokens)   # one word for every clip
and `model(batch)` gives teacher-forced logits for training.

Batches are dicts of tensors: `feats` [B, T, D] with `mask` [B, T] (the high-level
feature), `mid` [B, T2, D2] with `mid_mask` (topdown), `attrs` [B, K] word ids of
attribute words (semantic models; 0 pads), `tokens` [B, L] (<bos> .. <eos>, 0 pads).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from sonicaps.captioning.vocab import PAD

RECURRENT = ("lstm", "tempatt", "topdown", "semtempatt", "alignedatt")
NEURAL = (*RECURRENT, "transformer")


@dataclass
class ModelConfig:
    model: str
    vocab_size: int
    feat_dim: int
    mid_dim: int = 0  # topdown: the mid-level feature's size
    embed: int = 128
    hidden: int = 256
    dropout: float = 0.3
    layers: int = 2  # transformer
    heads: int = 4  # transformer

    def to_dict(self) -> dict:
        return asdict(self)


def build(cfg: ModelConfig) -> nn.Module:
    if cfg.model in RECURRENT:
        model: nn.Module = RecurrentCaptioner(cfg)
    elif cfg.model == "transformer":
        model = TransformerCaptioner(cfg)
    else:
        raise ValueError(
            f"unknown model {cfg.model!r}; choose from 1nn-mfcc, 1nn-yamnet, {', '.join(NEURAL)}"
        )
    xavier_init(model)
    return model


def xavier_init(model: nn.Module) -> None:
    """Xavier-uniform weights and zero biases, as in the paper's appendix."""
    for name, p in model.named_parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)
        elif name.endswith("bias"):
            nn.init.zeros_(p)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp(min=1.0)


def attend(
    query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention of query [B, H] over keys [B, T, H]; returns (context, weights)."""
    scores = torch.bmm(keys, query.unsqueeze(2)).squeeze(2).masked_fill(~mask, -1e9)
    weights = scores.softmax(dim=1)
    return torch.bmm(weights.unsqueeze(1), values).squeeze(1), weights


class BiLSTM(nn.Module):
    """A bidirectional LSTM over padded sequences; outputs [B, T, 2 * half] and the
    concatenated final states [B, 2 * half]."""

    def __init__(self, dim_in: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim_in, hidden // 2, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, (h, _) = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out, torch.cat([h[0], h[1]], dim=1)


class RecurrentCaptioner(nn.Module):
    """An LSTM decoder (dropout, layer norm, input feeding) over one of five encoders:

    - lstm: the mean-pooled feature is the decoder's initial state, nothing else;
    - tempatt: a bi-LSTM over the frames, Luong global ("general") attention over it;
    - topdown: the top-down multi-scale encoder: a bi-LSTM over high-level frames whose
      final states give a context vector (eq. 1-2), added to every projected mid-level
      frame before a second bi-LSTM (eq. 3), which the decoder attends to;
    - semtempatt: tempatt plus semantic attention over attribute words (You et al.):
      input attention adds an attribute context to each input word, output attention
      adds one to the attentional state;
    - alignedatt: attribute words through a bi-LSTM, aligned with the audio frames by an
      attention-flow layer (similarity matrix, word-to-audio and audio-to-word attention,
      the 4-way concatenation of eq. 5-9), then temporal attention (eq. 10-13).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg, h, kind = cfg, cfg.hidden, cfg.model
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed, padding_idx=PAD)
        self.drop = nn.Dropout(cfg.dropout)
        self.proj = nn.Linear(cfg.feat_dim, h)
        if kind in ("tempatt", "semtempatt", "alignedatt"):
            self.frames = BiLSTM(h, h)
        if kind == "topdown":
            if not cfg.mid_dim:
                raise ValueError("topdown needs a mid-level feature (mid_dim)")
            self.high = BiLSTM(h, h)
            self.mid_proj = nn.Linear(cfg.mid_dim, h)
            self.mid = BiLSTM(h, h)
        if kind == "semtempatt":
            self.attr_in = nn.Linear(h, cfg.embed, bias=False)  # h_{t-1} against attribute words
            self.attr_out = nn.Linear(h, cfg.embed, bias=False)
        if kind == "alignedatt":
            self.attr_rnn = BiLSTM(cfg.embed, h)
            self.sim = nn.Linear(3 * h, 1)  # w^T [h; u; h * u]
            self.flow = nn.Linear(4 * h, h)
        self.init_h, self.init_c = nn.Linear(h, h), nn.Linear(h, h)
        self.attentive = kind != "lstm"
        extra = cfg.embed if kind == "semtempatt" else 0
        self.cell = nn.LSTMCell(cfg.embed + (h if self.attentive else 0) + extra, h)
        self.norm = nn.LayerNorm(h)
        if self.attentive:
            self.att = nn.Linear(h, h, bias=False)  # Luong "general" score
            self.combine = nn.Linear(2 * h + extra, h)
        self.out = nn.Linear(h, cfg.vocab_size)

    # encoder ------------------------------------------------------------------------

    def encode(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """(memory [B, T, H], memory mask [B, T], summary [B, H], attrs [B, K, E], attr mask)."""
        kind, mask = self.cfg.model, batch["mask"]
        x = self.drop(torch.relu(self.proj(batch["feats"])))
        attrs = attr_mask = None
        if kind == "lstm":
            memory, summary = x, masked_mean(x, mask)
        elif kind == "topdown":
            _, v = self.high(x, mask)  # eq. 1-2: the high-level context vector
            m = torch.relu(self.mid_proj(batch["mid"])) + v.unsqueeze(1)  # eq. 3
            memory, _ = self.mid(self.drop(m), batch["mid_mask"])
            mask, summary = batch["mid_mask"], v
        else:
            memory, summary = self.frames(x, mask)
        if kind in ("semtempatt", "alignedatt"):
            attr_mask = batch["attrs"] != PAD
            attr_mask[:, 0] |= ~attr_mask.any(1)  # a clip without attributes attends to padding
            attrs = self.embed(batch["attrs"])
        if kind == "alignedatt":
            memory = self._attention_flow(memory, mask, attrs, attr_mask)
        empty = memory.new_zeros(memory.shape[0], 1, 1)
        return (
            memory,
            mask,
            summary,
            attrs if attrs is not None else empty,
            attr_mask if attr_mask is not None else mask[:, :1],
        )

    def _attention_flow(
        self, audio: torch.Tensor, mask: torch.Tensor, attrs: torch.Tensor, attr_mask: torch.Tensor
    ) -> torch.Tensor:
        u, _ = self.attr_rnn(attrs, attr_mask)  # [B, K, H]
        b, t, k = audio.shape[0], audio.shape[1], u.shape[1]
        hx, ux = audio.unsqueeze(2).expand(b, t, k, -1), u.unsqueeze(1).expand(b, t, k, -1)
        s = self.sim(torch.cat([hx, ux, hx * ux], dim=-1)).squeeze(-1)  # [B, T, K] similarity
        s = s.masked_fill(~attr_mask.unsqueeze(1), -1e9)
        u_tilde = torch.bmm(s.softmax(dim=2), u)  # word-to-audio: attributes per frame
        best = s.max(dim=2).values.masked_fill(~mask, -1e9)  # audio-to-word
        h_tilde = torch.bmm(best.softmax(dim=1).unsqueeze(1), audio).expand(b, t, -1)
        g = torch.cat([audio, u_tilde, audio * u_tilde, audio * h_tilde], dim=-1)  # eq. 9
        return self.drop(torch.relu(self.flow(g)))

    # decoder ------------------------------------------------------------------------

    def init_state(self, enc: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        summary = enc[2]
        h, c = torch.tanh(self.init_h(summary)), torch.tanh(self.init_c(summary))
        return h, c, torch.zeros_like(h)  # the last attentional state (input feeding)

    def step(
        self, enc: tuple[torch.Tensor, ...], state: tuple[torch.Tensor, ...], tokens: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        memory, mask, _, attrs, attr_mask = enc
        h, c, feed = state
        parts = [self.drop(self.embed(tokens))]
        if self.attentive:
            parts.append(feed)
        if self.cfg.model == "semtempatt":  # input attention over attribute words
            parts.append(attend(self.attr_in(h), attrs, attrs, attr_mask)[0])
        h, c = self.cell(torch.cat(parts, dim=1), (h, c))
        top = self.norm(h)
        if self.attentive:
            ctx, _ = attend(self.att(top), memory, memory, mask)
            more = [ctx, top]
            if self.cfg.model == "semtempatt":  # output attention
                more.append(attend(self.attr_out(top), attrs, attrs, attr_mask)[0])
            top = torch.tanh(self.combine(torch.cat(more, dim=1)))
        return self.out(self.drop(top)), (h, c, top)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        enc = self.encode(batch)
        state = self.init_state(enc)
        tokens, out = batch["tokens"], []
        for t in range(tokens.shape[1] - 1):  # teacher forcing
            logits, state = self.step(enc, state, tokens[:, t])
            out.append(logits)
        return torch.stack(out, dim=1)


def positions(length: int, dim: int) -> torch.Tensor:
    pos = torch.arange(length).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
    return pe


class TransformerCaptioner(nn.Module):
    """Audio frames through a transformer encoder, words from a transformer decoder."""

    MAX_POSITIONS = 1024

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg, d = cfg, cfg.hidden
        self.proj = nn.Linear(cfg.feat_dim, d)
        self.embed = nn.Embedding(cfg.vocab_size, d, padding_idx=PAD)
        self.register_buffer("pe", positions(self.MAX_POSITIONS, d), persistent=False)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d, cfg.heads, 2 * d, cfg.dropout, batch_first=True, norm_first=True),
            cfg.layers,
            enable_nested_tensor=False,
        )
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(d, cfg.heads, 2 * d, cfg.dropout, batch_first=True, norm_first=True),
            cfg.layers,
        )
        self.norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, cfg.vocab_size)
        self.drop = nn.Dropout(cfg.dropout)

    def encode(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        x = self.proj(batch["feats"]) + self.pe[: batch["feats"].shape[1]]
        return self.encoder(self.drop(x), src_key_padding_mask=~batch["mask"]), batch["mask"]

    def _decode(self, enc: tuple[torch.Tensor, ...], tokens: torch.Tensor) -> torch.Tensor:
        memory, mask = enc
        n = tokens.shape[1]
        y = self.drop(self.embed(tokens) * math.sqrt(self.cfg.hidden) + self.pe[:n])
        causal = torch.triu(torch.ones(n, n, dtype=torch.bool, device=tokens.device), diagonal=1)
        y = self.decoder(
            y, memory, tgt_mask=causal, tgt_key_padding_mask=tokens == PAD, memory_key_padding_mask=~mask
        )
        return self.out(self.norm(y))

    def init_state(self, enc: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return (enc[0].new_zeros(enc[0].shape[0], 0, dtype=torch.long),)

    def step(
        self, enc: tuple[torch.Tensor, ...], state: tuple[torch.Tensor, ...], tokens: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        prefix = torch.cat([state[0], tokens.unsqueeze(1)], dim=1)
        return self._decode(enc, prefix)[:, -1], (prefix,)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        enc = self.encode(batch)
        return self._decode(enc, batch["tokens"][:, :-1])
