"""A clone is complete on its own: every document the READMEs link is in the repository.

The design used to live beside the clone (../shared/design.md) and was missing from every fresh clone.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "hardware.md", "BENCHMARKS.md", "docs/design.md", "firmware_bridge/README.md",
        "calibration/examples/README.md"]


def _links(text: str) -> list[str]:
    """Markdown link and image targets, and backticked paths to markdown files."""
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    targets += re.findall(r"`([^`\s]+\.md)`", text)
    return [t.split("#", 1)[0] for t in targets if not re.match(r"[a-z]+://|mailto:|#", t)]


def test_every_linked_document_is_in_the_clone():
    missing = []
    for doc in DOCS:
        path = ROOT / doc
        assert path.is_file(), doc
        for target in _links(path.read_text()):
            if not target:
                continue
            resolved = (path.parent / target).resolve()
            if ROOT.resolve() not in resolved.parents and resolved != ROOT.resolve():
                missing.append(f"{doc}: {target} points outside the repository")
            elif not resolved.exists():
                missing.append(f"{doc}: {target} does not exist")
    assert not missing, "\n".join(missing)


def test_the_readme_links_the_design_and_the_design_names_real_modules():
    assert "](docs/design.md)" in (ROOT / "README.md").read_text()
    design = (ROOT / "docs/design.md").read_text()
    # every module path the design names exists (it is the project's copy: keep it current)
    for path in re.findall(r"`((?:drone_sim|policies|firmware_bridge|deploy|calibration|tests)/[\w/]+\.(?:py|h))`",
                           design):
        assert (ROOT / path).exists(), f"docs/design.md names {path}, which does not exist"
