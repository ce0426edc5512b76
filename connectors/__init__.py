"""Connectors: one module per package, registered in :mod:`connectors.registry`.

Connectors use neither the Flask app nor its models: they take plain configuration and
credential objects and yield the canonical records of :mod:`connectors.base`.
"""
