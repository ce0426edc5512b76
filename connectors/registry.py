"""The one list of connector modules. Adding a package = one line here.

Modules are imported on first use, not at import time of this module.
"""
from functools import cache
from importlib import import_module

#: dotted module paths; each module defines exactly one :class:`connectors.base.Connector` subclass
CONNECTOR_MODULES = [
    "connectors.demo",
    "connectors.demo_oauth",
    "connectors.xero",
    "connectors.xero_tb",
    "connectors.exact_online_be",
    "connectors.exact_online_fr",
    "connectors.exact_online_nl",
    "connectors.companies_house",
    "connectors.quickbooks",
    "connectors.economic",
]


@cache
def all_connectors():
    """``{key: Connector subclass}`` for every registered module, in registry order."""
    from connectors.base import Connector

    found = {}
    for path in CONNECTOR_MODULES:
        module = import_module(path)
        classes = [
            obj for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, Connector) and obj is not Connector
            and obj.__module__ == module.__name__ and hasattr(obj, "spec")
        ]
        if len(classes) != 1:
            raise RuntimeError(f"{path} must define exactly one connector class, found {len(classes)}")
        cls = classes[0]
        if cls.spec.key in found:
            raise RuntimeError(f"connector key {cls.spec.key!r} is registered twice")
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
