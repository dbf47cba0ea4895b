"""The C extensions (Cython, src/sonicaps/metrics/_*.pyx); the rest of the build is in
pyproject.toml. Optional: without a C compiler the install still succeeds and the metrics
run the same code paths in Python, with the same numbers, several times slower."""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExt(build_ext):
    """Floating point as written: no fused multiply-adds, which would round the metrics'
    sums differently from the reference implementations."""

    def build_extensions(self) -> None:
        if self.compiler.compiler_type != "msvc":
            for ext in self.extensions:
                ext.extra_compile_args += ["-ffp-contract=off", "-Wno-unused-function"]
        super().build_extensions()


setup(
    ext_modules=[Extension(f"sonicaps.metrics.{name}", [f"src/sonicaps/metrics/{name}.pyx"], optional=True)
                 for name in ("_coco", "_meteor")],
    cmdclass={"build_ext": BuildExt},
)
