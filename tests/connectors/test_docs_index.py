"""The package index of docs/connectors.md is the registry's (``python -m connectors``)."""
import re

from connectors.__main__ import DOCS, index_markdown
from connectors.registry import ROOT, all_connectors, folder_of


def test_the_docs_index_lists_every_registered_package():
    text = (ROOT.parent / DOCS).read_text()
    block = re.search(r"<!-- packages:begin -->\n(.*?)<!-- packages:end -->", text, re.S)
    assert block, "docs/connectors.md lost its packages:begin/end markers"
    assert block.group(1) == index_markdown(), "run `python -m connectors` and paste its output between the markers"


def test_every_package_folder_has_its_notes():
    for key in all_connectors():
        assert (folder_of(key) / "README.md").is_file(), f"{key}: connectors/{folder_of(key).name}/README.md is missing"
