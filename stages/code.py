"""DVC stage `code`: for each stage kind, the project files its command runs and their checksums (data/code/)."""

from pathlib import Path

import typer

from stages.common import CODE, outputs, user_errors, work

app = typer.Typer(add_completion=False)


@app.command()
def code() -> None:
    """Write data/code/<kind>.txt for every stage kind (download, prepare, classify, derive, train, evaluate, sweep,
    report, summary): every stage of a kind depends on its list, which changes only when a file it runs does."""
    with user_errors(), outputs(CODE), work():
        from pipeline.fingerprint import write_fingerprints

        for path in write_fingerprints(Path("."), CODE):
            typer.echo(f"{path}: {len(path.read_text().splitlines())} files")


if __name__ == "__main__":
    app()
