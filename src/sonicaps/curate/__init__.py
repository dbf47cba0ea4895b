"""Dataset curation the AudioCaps way: select clips from AudioSet (audioset.py), clean and
check caption text (text.py), describe a dataset (stats.py), keep evaluation clips out of
training data (dedupe.py)."""
