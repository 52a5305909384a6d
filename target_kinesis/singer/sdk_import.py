"""Importing the Singer SDK's target side without its tap side.

`import singer_sdk` runs the package's `__init__`, which imports everything a tap uses:
`singer_sdk.streams` (REST, GraphQL, pagination, authenticators), `requests`, `jsonpath_ng`,
`singer_sdk.tap_base`. A target uses none of it; measured on a 2-CPU machine that is 40 to
60 ms of a start-up of about 0.5 s (69 modules).

`without_tap_side()` puts the `singer_sdk` package in `sys.modules` without running its
`__init__`, the way the import system itself makes a package module (`module_from_spec`),
then imports the target side (`singer_sdk.target_base`, `singer_sdk.sinks`) into it. The
package's other names stay reachable: a submodule (`from singer_sdk import metrics`) is
imported when asked for, and any other name (`from singer_sdk import Stream`, `__all__`)
runs the package's real `__init__` then (on the same module, so every class already
imported stays the same object), after which the package is the SDK's own.

It does nothing when `singer_sdk` is already imported, and falls back to the plain
`import singer_sdk` when anything in it fails (a future SDK whose target side needs its
`__init__`, a package that is not a directory): start-up is then only as slow as before.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
import typing as t

_PACKAGE = "singer_sdk"

#: The modules of the target side imported at once: what TargetKinesis and its sinks subclass.
TARGET_SIDE = ("singer_sdk.target_base", "singer_sdk.sinks")


def without_tap_side() -> bool:
    """Import the SDK's target side without the package's `__init__`; True when done so, False
    when `singer_sdk` was already imported or was imported the plain way (the fallback)."""
    if _PACKAGE in sys.modules:
        return False
    try:
        _import_target_side()
    except Exception:
        # The SDK's modules again, the plain way (what else the attempt imported is whole).
        for name in [n for n in sys.modules if n == _PACKAGE or n.startswith(f"{_PACKAGE}.")]:
            del sys.modules[name]
        importlib.import_module(_PACKAGE)
        return False
    return True


def _import_target_side() -> None:
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or spec.loader is None or not spec.submodule_search_locations:
        raise ImportError(f"{_PACKAGE} is not a package on the path")
    loader = spec.loader
    package = importlib.util.module_from_spec(spec)

    def finish_package(name: str) -> t.Any:
        """The package's `__getattr__` until its `__init__` has run: a submodule, or else a
        name the real `__init__` defines (it runs once: this `__getattr__` is removed first,
        and the `__init__` defines its own)."""
        if not name.startswith("__"):
            try:
                return importlib.import_module(f"{_PACKAGE}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{_PACKAGE}.{name}":
                    raise
        if package.__dict__.get("__getattr__") is finish_package:
            del package.__dict__["__getattr__"]
            loader.exec_module(package)
        return getattr(package, name)

    package.__dict__["__getattr__"] = finish_package
    sys.modules[_PACKAGE] = package
    for name in TARGET_SIDE:
        importlib.import_module(name)


def tap_side_imported() -> bool:
    """Whether the package's `__init__` (and with it the tap side) has been imported."""
    package = sys.modules.get(_PACKAGE)
    return isinstance(package, types.ModuleType) and "Tap" in package.__dict__


__all__ = ["TARGET_SIDE", "tap_side_imported", "without_tap_side"]
