"""stratum_kernel: the library behind stratum's notebooks, dashboard and command line.

Importing the package is cheap: heavy libraries (librosa, onnxruntime, torch) are
imported inside the modules that need them. The package points numba's cache at
``cache/numba`` inside the project (unless ``NUMBA_CACHE_DIR`` is already set) so that
librosa's JIT compilation is paid once per machine, not once per process.
"""

from __future__ import annotations

import os

from stratum_kernel.core.paths import project_root

__version__ = "0.1.0"

os.environ.setdefault("NUMBA_CACHE_DIR", str(project_root() / "cache" / "numba"))

__all__ = ["__version__"]
