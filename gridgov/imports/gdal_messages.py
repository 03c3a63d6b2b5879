"""What GDAL says while gridgov reads a file, collected for the import report.

pyogrio turns GDAL's warnings into Python warnings only on the thread that imported it (a GDAL
error handler is thread-local); on the API's worker threads GDAL would print them to stderr in
English. ``collected()`` pushes a handler of our own on the current thread for the duration of
a read, so every thread hands its messages to the report and none reaches the terminal.
"""

from __future__ import annotations

import ctypes
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from gridgov.gdal import pyogrio

CE_WARNING, CE_FAILURE = 2, 3
_HANDLER_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_char_p)


@cache
def _gdal() -> ctypes.CDLL | None:
    """pyogrio's own libgdal (already loaded: ctypes gets the same handle), or None."""
    folder = Path(pyogrio.__file__).parent.parent / "pyogrio.libs"
    candidates = sorted(folder.glob("libgdal*.so*")) if folder.is_dir() else []
    names = [str(p) for p in candidates] or ["libgdal.so"]
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.CPLPushErrorHandler.argtypes = [_HANDLER_TYPE]
        lib.CPLPushErrorHandler.restype = None
        lib.CPLPopErrorHandler.argtypes = []
        lib.CPLPopErrorHandler.restype = None
        return lib
    return None


@contextmanager
def collected() -> Iterator[list[str]]:
    """Messages of GDAL warnings (and of failures, which pyogrio also raises) during the block,
    from GDAL's handler on worker threads and from pyogrio's Python warnings on the main one."""
    messages: list[str] = []

    def handler(err_class: int, _err_no: int, message: bytes | None) -> None:
        if err_class == CE_WARNING and message:
            messages.append(message.decode("utf-8", "replace").strip())

    lib = _gdal()
    callback = _HANDLER_TYPE(handler)  # kept alive until popped
    if lib is not None:
        lib.CPLPushErrorHandler(callback)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages
        messages.extend(str(w.message) for w in caught if issubclass(w.category, RuntimeWarning))
    finally:
        if lib is not None:
            lib.CPLPopErrorHandler()
