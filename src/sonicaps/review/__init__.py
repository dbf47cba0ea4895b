"""Human review of captions: `sonicaps review`, `sonicaps export --reviewed`, `sonicaps review-stats`.

Data flow: collection.py indexes a pipeline output folder (or any dataset sonicaps reads)
into a catalog, paging through its Parquet shards in the background; reviews.py keeps
every reviewer's decisions in SQLite beside the data, append-only; media.py renders a
clip's audio and spectrogram; app.py serves the page (static/) and its JSON API;
summary.py turns the reviews into statistics and the reviewed export.
"""
