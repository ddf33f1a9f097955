"""The page `dvc plots show` writes its charts into, with Vega, Vega-Lite and Vega-Embed inlined so that the
loss curves draw with no network. DVC's own page loads the three from a CDN and stays blank offline.

`make setup` writes it to .dvc/plots/offline.html from the pinned vl-convert-python wheel (its bundled
scripts, no npm), and .dvc/config names it as `plots.html_template`:

    python -m pipeline.plots_page .dvc/plots/offline.html
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.files import write_text

# DVC fills `{plot_divs}`, each div a classic inline script calling the global `vegaEmbed` at once, so the
# libraries are one classic script ahead of them (the bundle's default snippet sets the globals).
PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>aegan plots</title>
<script>
{bundle}
</script>
<style>body {{ font-family: sans-serif; }} table {{ border-spacing: 15px; }}</style>
</head>
<body>
{{plot_divs}}
</body>
</html>
"""


def page() -> str:
    """The template's text: about 0.9 MB, nearly all of it the three libraries."""
    import vl_convert

    bundle = vl_convert.javascript_bundle()
    if "</script" in bundle or "{plot_divs}" in bundle:  # would end the script early, or be filled by DVC
        raise RuntimeError("the vl-convert bundle cannot be inlined as it is; pin another vl-convert-python")
    return PAGE.format(bundle=bundle)


if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text(target, page())
