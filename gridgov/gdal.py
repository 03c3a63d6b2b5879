"""pyogrio (GDAL) as the service imports it: without pandas.

pyogrio's package import probes for pandas and imports it whenever it is installed (ortools,
the contacts solver, pulls it in): about 40 MB more in every server process and 0.3 s more
start-up, for pyogrio's DataFrame functions, which gridgov never calls (it reads with
``pyogrio.raw`` and writes Arrow streams). While pyogrio is imported here ``import pandas``
fails as if pandas were absent; the block is lifted at once, so code that needs pandas later
(ortools' model builder) still gets it. gridgov's modules import pyogrio from here.
"""

from __future__ import annotations

import sys

_BLOCK_PANDAS = "pandas" not in sys.modules
if _BLOCK_PANDAS:
    sys.modules["pandas"] = None  # type: ignore[assignment]  # `import pandas` → ImportError
try:
    import pyogrio
    import pyogrio.errors
    import pyogrio.raw
finally:
    if _BLOCK_PANDAS and "pandas" in sys.modules and sys.modules["pandas"] is None:
        del sys.modules["pandas"]

__all__ = ["pyogrio"]
