"""MkDocs hook: the site's home page is the repository's README, so the two never drift apart.

docs/index.md is a placeholder for the navigation; its text is replaced on reading by
README.md's, with the README's `docs/` prefixes taken off its links (the site is served from
docs/), and its mentions of a page (`docs/models.md`) made links to it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[2] / "README.md"


def on_page_read_source(page: Any, config: Any) -> str | None:
    if page.file.src_uri != "index.md":
        return None
    text = README.read_text(encoding="utf-8").replace("](docs/", "](")
    return re.sub(r"`docs/([\w/.-]+\.md)`", r"[\1](\1)", text)
