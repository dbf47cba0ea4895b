"""sonicaps: generate, curate, train and score audio captions."""

__version__ = "0.1.0"
