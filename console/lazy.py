"""Heavy libraries imported when first used, not when Django starts.

numpy, pyarrow and the capture and log parsers built on them cost a second or more to import.
Every process of the console (each management command, each gunicorn worker, each Celery
worker) loads the URLconf, and through it the services; only the few requests and tasks that
read a capture or simulate a rule need those libraries. The services therefore name them
through a stand-in that imports the real module on the first attribute read::

    np = lazy_module("numpy")
    pcap = lazy_module("traffic.parsers.pcap")

Every attribute read goes to the real module, so a test that monkeypatches the real module
is seen. ``tests/console/test_startup_imports.py`` checks that start-up stays free of them.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class LazyModule(types.ModuleType):
    """Stands for the module of the same name; imports it on first attribute read."""

    def __getattr__(self, attr: str) -> Any:
        name = self.__name__
        module = sys.modules.get(name)
        if module is None:
            module = importlib.import_module(name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        loaded = "loaded" if self.__name__ in sys.modules else "not loaded yet"
        return f"<lazy module {self.__name__!r} ({loaded})>"


def lazy_module(name: str) -> Any:
    """The module ``name`` if it is already imported, otherwise a stand-in that imports it on use.

    Typed ``Any`` so that call sites read as the module itself (``np.asarray``, ``pa.table``).
    """
    return sys.modules.get(name) or LazyModule(name)
