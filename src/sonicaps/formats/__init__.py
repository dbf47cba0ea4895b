"""Caption datasets in the field's formats, both ways, through one record type.

records.py holds CaptionRecord; readers.py turns AudioCaps, AudioSetCaps, Clotho and
WavCaps files, sonicaps pipeline output and the formats below into records; writers.py
writes records as a Hugging Face dataset, Parquet, JSONL, webdataset shards or an
AudioCaps CSV; torch_dataset.py serves any of them for training.
"""
