"""Backends on Hugging Face transformers models, loaded in-process (a GPU, or the CPU).

Model ids or local directories go through the usual `from_pretrained`, so the hub cache
and `HF_HUB_OFFLINE` work as everywhere else in the transformers world.
"""
