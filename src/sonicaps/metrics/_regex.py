"""re.compile for the metrics' fixed patterns, with the regex engine's code cached on disk.

Compiling a pattern (parsing it, then generating the engine's code) costs Python ~0.1-1 ms;
the COCO suite compiles ~100 fixed patterns (the PTB lexer's rules, METEOR's normalizer),
~15 ms of each scoring run. The engine code that re.compile hands to _sre.compile is kept
instead, per pattern and flags, in a marshal file named after the Python version and the
engine's version (_sre.MAGIC), and a pattern is made from it directly. A pattern made so
equals re.compile's (Pattern equality compares the pattern, the flags and the code;
tests/test_tokenizer.py checks it). A pattern the file lacks is compiled as usual and added.
"""

from __future__ import annotations

import _sre
import marshal
import re
import sys
import zlib

_cache: dict | None = None  # (pattern, flags) -> arguments of _sre.compile after the pattern


def compile(pattern: str, flags: int = 0) -> re.Pattern:  # noqa: A001 (re.compile's name, on purpose)
    cache = _load()
    flags = int(flags)  # (re.DOTALL & co. are an int subclass, which marshal cannot write)
    entry = cache.get((pattern, flags))
    if entry is not None:
        try:
            return _sre.compile(pattern, *entry)
        except (TypeError, ValueError, RuntimeError):  # not this engine's code after all
            pass
    compiled = re.compile(pattern, flags)
    cache[(pattern, flags)] = _engine_args(pattern, flags)
    _save(cache)
    return compiled


def _engine_args(pattern: str, flags: int) -> tuple:
    """What re._compiler.compile passes to _sre.compile after the pattern."""
    from re import _compiler, _parser

    parsed = _parser.parse(pattern, flags)
    code = _compiler._code(parsed, flags)
    groupindex = dict(parsed.state.groupdict)
    indexgroup = [None] * parsed.state.groups
    for name, index in groupindex.items():
        indexgroup[index] = name
    return (int(flags | parsed.state.flags), [int(x) for x in code], int(parsed.state.groups - 1),
            groupindex, tuple(indexgroup))


def _path():
    from sonicaps.sources import cache_dir

    key = zlib.crc32(f"{sys.version} {_sre.MAGIC} {marshal.version}".encode())
    return cache_dir() / "regex" / f"sre-{key:08x}.marshal"


def _load() -> dict:
    global _cache
    if _cache is None:
        try:
            _cache = marshal.loads(_path().read_bytes())
            if not isinstance(_cache, dict):
                _cache = {}
        except (OSError, ValueError, EOFError, TypeError):
            _cache = {}
    return _cache


def _save(cache: dict) -> None:
    """Write the cache (best effort: a read-only cache folder only costs compile time)."""
    from sonicaps.sources import write_atomic

    try:
        path = _path()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, marshal.dumps(cache))
    except OSError:
        pass
