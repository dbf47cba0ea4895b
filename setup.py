"""The one C extension, METEOR's aligner (src/sonicaps/metrics/_align.pyx); the rest of the
build is in pyproject.toml. Optional: without a C compiler the install still succeeds and
METEOR runs the same alignment in Python, about twice as slow."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("sonicaps.metrics._align", ["src/sonicaps/metrics/_align.pyx"], optional=True)])
