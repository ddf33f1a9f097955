"""The README and docs/ say what the repository holds: a scannable README whose links land, whose results
table is the one the pipeline wrote, and whose worked example is the params block that runs."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def anchor(heading: str) -> str:
    """GitHub's anchor for a markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_readme_is_short_and_its_contents_list_every_section():
    assert len(README.splitlines()) <= 300
    sections = [line[3:] for line in README.splitlines() if line.startswith("## ")]
    contents = README.split("## Contents", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"\]\(#([^)]+)\)", contents) == [anchor(s) for s in sections if s != "Contents"]


def test_every_relative_link_lands_on_a_file_and_heading():
    for page in PAGES:
        text = page.read_text()
        for target in re.findall(r"\]\(([^)#:]*)(?:#[^)]*)?\)", text):
            if target:
                assert (page.parent / target).exists(), f"{page.relative_to(ROOT)}: {target}"
        for path, part in re.findall(r"\]\(([^)#:]+\.md)#([^)]+)\)", text):
            headings = (page.parent / path).read_text().splitlines()
            assert part in {anchor(line.lstrip("#")) for line in headings if line.startswith("#")}, (page, part)


def test_the_readme_results_are_the_table_the_summary_stage_wrote():
    copied = README.split("<!-- summary: a copy of the table in reports/summary.md -->\n", 1)[1]
    copied = copied.split("<!-- end of summary -->", 1)[0].strip()
    written = (ROOT / "reports" / "summary.md").read_text()
    table = "\n".join(line for line in written.splitlines() if line.startswith("|"))
    assert copied == table and len(table.splitlines()) > 10


def test_the_add_a_model_example_is_the_params_block_that_runs():
    section = README.split("## Add a model", 1)[1].split("\n## ", 1)[0]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    example = yaml.safe_load("\n".join(line.removeprefix("   ") for line in block.splitlines()))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert example == {"residual_vae_digits": params["experiments"]["residual_vae_digits"]}


def documented_overrides(page: str, heading: str) -> list[str]:
    """The `-S` overrides of the `dvc exp run` command in the bash block under `heading` of a docs page."""
    section = (ROOT / page).read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return re.findall(r"-S '([^']+)'", block)


@pytest.mark.parametrize(
    ("page", "heading", "added"),
    [
        ("docs/studies/vae_gan.md", "Filtering through an autoencoder first", 5),
        ("docs/studies/ambient.md", "Restoration against drop probability", 12),
    ],
)
def test_an_opt_in_experiment_the_study_pages_give_is_params_that_check_out(tmp_path, page, heading, added):
    """DVC applies the overrides as it would for `dvc exp run -S`; what comes out passes `aegan check`."""
    from dvc.utils.hydra import apply_overrides

    from tests.conftest import checked

    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    apply_overrides(path, documented_overrides(page, heading))
    raw = yaml.safe_load(path.read_text())
    params = checked(raw)
    before = yaml.safe_load((ROOT / "params.yaml").read_text())
    new_runs = (
        len(params.experiments) - len(before["experiments"]) + len(params.sweep.experiments) * len(params.sweep.percent)
    )
    assert new_runs == added
