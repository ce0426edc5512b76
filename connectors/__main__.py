"""``python -m connectors``: the package index of ``docs/connectors.md`` as Markdown, from the registry.

The docs' index is this output between its ``packages:begin`` and ``packages:end`` markers; a
test keeps the two equal, so a new package folder shows up in the docs by running this.
"""
from connectors.registry import all_connectors, folder_of, package_folders

DOCS = "docs/connectors.md"


def index_markdown():
    """One row per registered connector: key, name, level, kind, auth, notes, vendor docs."""
    rows = ["| key | package | level | kind | auth | notes | vendor docs |", "|---|---|---|---|---|---|---|"]
    for key, cls in all_connectors().items():
        spec, folder = cls.spec, folder_of(key).name
        notes = f"[connectors/{folder}/README.md](../connectors/{folder}/README.md)"
        name = spec.display_name + (" (built from public facts only)" if spec.undocumented else "")
        rows.append(f"| `{key}` | {name} | {spec.level} | {spec.kind} | {spec.auth.kind} | {notes} | {spec.docs_url} |")
    return "\n".join(rows) + f"\n\n{len(all_connectors())} connectors in {len(package_folders())} package folders.\n"


if __name__ == "__main__":
    print(index_markdown(), end="")
