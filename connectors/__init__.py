"""Connectors: the kit (contract, auth strategies, transports, budgets, parsers) and one folder
per package (``connectors/<folder>/``), discovered by :mod:`connectors.registry`.

Connectors use neither the Flask app nor its models: they take plain configuration and
credential objects and yield the canonical records of :mod:`connectors.base`.
"""
