"""The AudioSetCaps (and WavCaps) released models as sonicaps models.

checkpoint.py  finds a published checkpoint (or a local file) and renames its keys
frontend.py    32-kHz audio -> the log-mel the models were trained on
models.py      HTSAT-BART captioner and HTSAT-RoBERTa retrieval on transformers' classes
backends.py    the two as pipeline backends (write: direct captioner, check: scorer)
tasks.py       predict, evaluate (the papers' protocols) and fine-tune
"""
