"""Firmsync's benchmark harness (``make bench``, ``python -m benchmarks --help``).

One module per concern: :mod:`benchmarks.services` (Redis, PostgreSQL, sandbox processes),
:mod:`benchmarks.world` (app, Xero dossiers, worker runs), :mod:`benchmarks.full_sync`
(measures 1, 2 and 3) with :mod:`benchmarks.prerendered` (measure 1's pre-rendered page server),
:mod:`benchmarks.fanout` (measure 5), :mod:`benchmarks.report`.
Results: ``docs/benchmarks.md`` and ``docs/benchmarks.json``.
"""
