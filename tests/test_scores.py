"""pipeline.scores: clock readings are written apart from the scores and read back with them."""

from __future__ import annotations

import json

from pipeline.scores import read_scores, write_scores


def test_clock_readings_go_to_their_own_file_and_come_back_with_the_scores(tmp_path):
    summary = {"psnr_mean": 21.5, "fcd": 40.0, "seconds_per_image": 0.002, "train_seconds": 12.5, "images": 60}
    write_scores(tmp_path / "exp", summary)
    assert json.loads((tmp_path / "exp.json").read_text()) == {"psnr_mean": 21.5, "fcd": 40.0, "images": 60}
    assert json.loads((tmp_path / "exp.timing.json").read_text()) == {"seconds_per_image": 0.002, "train_seconds": 12.5}
    assert read_scores(tmp_path / "exp") == summary
    (tmp_path / "exp.timing.json").unlink()
    assert read_scores(tmp_path / "exp") == {"psnr_mean": 21.5, "fcd": 40.0, "images": 60}
