"""The Jinja2 environment for fakeprobe's HTML pages (evidence report, batch index, review page).

Templates live in ``fakeprobe/templates`` (package data) and extend ``base.html.j2``, which
inlines ``style.css`` so that every page is one self-contained file. Python code prepares the
data (formatted numbers, images as ``data:`` URIs) and the templates hold all the markup.
"""
from __future__ import annotations

from functools import lru_cache

import jinja2


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The shared environment: every value is HTML-escaped unless marked safe, and a name a
    template uses but was not given is an error instead of an empty string."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("fakeprobe.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
