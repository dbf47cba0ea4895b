"""Captioning models: the AudioCaps paper's family (1-NN, LSTM, temporal attention,
top-down multi-scale encoder, semantic and aligned semantic attention) and a transformer.

Data flow: features.py (cached frame features per clip) -> data.py (clips, captions,
attribute words, batches) -> models.py (the networks) -> train.py (training, runs on
disk, predict, evaluate) with decode.py (greedy and beam search).
"""
