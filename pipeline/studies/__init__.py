"""What one study's report shows beyond the generic table: its own rows, figures and columns.

`report.py` builds every study's table (one row per experiment, then the real-image FCD floors), its
side-by-side figures and its markdown the same way; a study with something of its own (the ambient study's
time-against-error plots, the seed's published numbers) has a module here whose `Study`
subclass adds it, registered below by the study's name in params.yaml.
"""

from __future__ import annotations

from pipeline.studies.ambient import Ambient
from pipeline.studies.base import Study

STUDIES: dict[str, Study] = {
    "ambient": Ambient(),
}


def study_for(name: str) -> Study:
    """The study's own module, or the generic one."""
    return STUDIES.get(name, Study())
