"""The packages Firmsync knows: one folder each under ``connectors/``, found by looking.

A package folder is a subpackage of :mod:`connectors` (``connectors/<folder>/__init__.py``)
that defines one or more :class:`connectors.base.Connector` subclasses with a ``spec`` of
their own (Exact Online's folder defines its three hosts). Beside it the folder may hold
``emulator.py`` (the sandbox's imitation of the vendor, mounted by :mod:`sandbox`),
``fixtures/`` (responses shaped as the vendor sends them) and ``README.md`` (its notes).
Nothing is listed anywhere else: adding a folder adds the package.

Folders whose name starts with ``_`` (the skeleton) and the kit's own subpackages
(:data:`KIT_PACKAGES`) are not packages. Modules are imported on first use, never at
import time of this module.
"""
from functools import cache
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent
#: subpackages of the kit itself, not packages (the emulators' shared toolkit)
KIT_PACKAGES = frozenset({"emulation"})


def package_folders():
    """The names of the package folders under ``connectors/``, sorted."""
    return sorted(
        path.name for path in ROOT.iterdir()
        if (path / "__init__.py").is_file() and not path.name.startswith("_") and path.name not in KIT_PACKAGES
    )


def connectors_in(module: ModuleType):
    """The connector classes a package folder's module defines itself (with a ``spec`` of their own)."""
    from connectors.base import Connector

    found = [
        obj for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, Connector) and obj is not Connector
        and obj.__module__ == module.__name__ and "spec" in vars(obj)
    ]
    if not found:
        raise RuntimeError(f"{module.__name__} is a package folder but defines no connector with a spec")
    return found


@cache
def all_connectors():
    """``{key: Connector subclass}`` for every package folder, by folder then definition order."""
    found = {}
    for folder in package_folders():
        for cls in connectors_in(import_module(f"connectors.{folder}")):
            if cls.spec.key in found:
                raise RuntimeError(f"connector key {cls.spec.key!r} is defined twice")
            found[cls.spec.key] = cls
    return found


def get_connector(key):
    """The connector class registered under ``key`` (KeyError when unknown)."""
    return all_connectors()[key]


def specs(kind=None, level=None):
    """The specs of the registered connectors, optionally filtered by kind and level."""
    return [
        cls.spec for cls in all_connectors().values()
        if (kind is None or cls.spec.kind == kind) and (level is None or cls.spec.level == level)
    ]


def folder_of(key):
    """The package folder (a :class:`Path`) holding connector ``key``."""
    return Path(import_module(get_connector(key).__module__).__file__).parent


def emulator_modules():
    """The dotted names of the package folders' emulators (``connectors.<folder>.emulator``)."""
    return [f"connectors.{folder}.emulator" for folder in package_folders()
            if find_spec(f"connectors.{folder}.emulator") is not None]
