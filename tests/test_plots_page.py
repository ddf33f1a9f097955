"""pipeline.plots_page: the page `dvc plots show` fills carries its scripts, so charts draw offline."""

from __future__ import annotations

import re

from pipeline.plots_page import page


def test_the_page_loads_nothing_from_the_network_and_has_dvcs_placeholder():
    text = page()
    assert text.count("{plot_divs}") == 1  # DVC refuses a template without it
    assert not re.search(r"<script[^>]*\bsrc=", text)  # every script inline: no CDN, no file beside it
    assert "vegaEmbed" in text and len(text) > 500_000  # the three libraries, not a stub
