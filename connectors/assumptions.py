"""Helpers for packages built from public information (docs/connectors.md, "Undocumented packages").

A package's ``assumptions.py`` declares ``ASSUMPTIONS = {name: connectors.base.Assumption(...)}``;
its spec carries them (``ConnectorSpec(assumptions=ASSUMPTIONS, undocumented=True)``) and its
connector reads each through ``self.assumed(name)``. :func:`markdown_table` renders them for the
package's README.md (between ``<!-- assumptions:begin -->`` and ``<!-- assumptions:end -->``; a
test keeps the two equal): ``python -m connectors.assumptions <key>`` prints it.
"""
from __future__ import annotations

import json
import sys

BEGIN, END = "<!-- assumptions:begin -->", "<!-- assumptions:end -->"
CONFIDENCE_WORDS = {"verified": "verified", "third_party": "3rd-party", "guess": "**GUESS**"}


def _cell(value):
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(assumptions) -> str:
    """The README table of ``assumptions`` (``{name: Assumption}``), one row each, sorted by name."""
    rows = ["| assumption | value | confidence | source | note |", "|---|---|---|---|---|"]
    for name, item in sorted(assumptions.items()):
        rows.append(f"| `{name}` | `{_cell(item.value)}` | {CONFIDENCE_WORDS.get(item.confidence, item.confidence)} "
                    f"| {_cell(item.source)} | {_cell(item.note)} |")
    return "\n".join(rows)


def readme_block(assumptions) -> str:
    """:func:`markdown_table` between the README markers."""
    return f"{BEGIN}\n{markdown_table(assumptions)}\n{END}"


def block_in(text) -> str | None:
    """The assumptions block of a README's ``text`` (markers included), or None."""
    start, end = text.find(BEGIN), text.find(END)
    return text[start:end + len(END)] if start >= 0 and end > start else None


def main(argv=None):
    from connectors.registry import get_connector

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m connectors.assumptions <package key>", file=sys.stderr)
        return 2
    print(readme_block(get_connector(args[0]).spec.assumptions))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
