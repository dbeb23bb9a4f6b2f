"""Your data through the collection (docs/your-data.md): the example profile's layout, run end to end
on a small plain-format dataset (synthetic, exported without kg.tsv so the KG is built from item
attributes), and the report page the runner writes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import yaml

from kgcl_lib.runner import notebooks as runner
from kgcl_lib.runner.__main__ import main as runner_main
from kgcl_lib.data.export import write_plain
from kgcl_lib.data.synthetic import SyntheticShape, make_synthetic
from kgcl_lib.report.html import write_report

from tests.helpers import REPO



def test_report_page_order_and_missing(tmp_path):
    """Claims first, then Tables 1–5 in order; figures by file; what is missing says n/a."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_dir, executed = tmp_path / "figures", tmp_path / "runs" / "notebooks"
    fig_dir.mkdir()
    executed.mkdir(parents=True)
    (fig_dir / "claims.md").write_text("*caption*\n\n| Claim | Verdict |\n|---|---|\n| 1 | **holds** |\n")
    (fig_dir / "table1.md").write_text("| row | mine |\n|---|---:|\n| # users | 60 |\n")
    (fig_dir / "table2.md").write_text("| Model | AUC |\n|---|---:|\n| L_base | n/a (no text) |\n")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    fig.savefig(fig_dir / "figure6.png")
    (fig_dir / "figure1_5.caption.txt").write_text("Figures 1 and 5 caption")
    (fig_dir / "figure6.caption.txt").write_text("Figure 6 caption")
    (executed.parent / "datasets.json").write_text(json.dumps(
        {"available": ["mine"], "skipped": {"bx": "OSError: gone"}, "kg": {"mine": "KG built from item attributes (genres)"},
         "text": {"mine": {"text": "human synopses for 3/4 items"}}}))
    nb = json.loads((REPO / "notebooks" / "01_data.ipynb").read_text())
    (executed / "01_data.ipynb").write_text(json.dumps(nb))
    page = write_report(fig_dir, executed, "mine", description="a test", timings={"01_data": 1.5}).read_text()
    at = [page.index(f"id={stem}>") for stem in ("claims", "table1", "table2", "table3", "table4", "table5")]
    assert at == sorted(at)
    assert "<td><strong>holds</strong></td>" in page and ">n/a (no text)</td>" in page and "<th>Claim</th>" in page
    assert page.count("n/a (table") == 3  # tables 3, 4, 5 not written
    assert "<img src='figure6.png'" in page and "Figure 6 caption" in page and "n/a (figure1.png" in page
    assert "KG built from item attributes (genres)" in page and "n/a (skipped: OSError: gone)" in page
    assert "href='notebooks/01_data.html'>01_data</a> (1.5 s)" in page
    assert (fig_dir / "notebooks" / "01_data.html").read_text().count("<html") == 1


@pytest.mark.notebooks
def test_example_profile_end_to_end(tmp_path_factory):
    """The example profile on a small plain dataset: notebooks 01–05 and 11 run, Table 1 counts the
    plain dataset, captions say where its KG comes from, and the runner writes the report page."""
    root = tmp_path_factory.mktemp("your-data")
    os.environ.setdefault("KGCL_CACHE_DIR", str(root / "cache"))
    shape = yaml.safe_load((REPO / "params" / "smoke.yaml").read_text())["dataset_options"]["synthetic-small"]["shape"]
    syn = make_synthetic(SyntheticShape(**shape), np.random.default_rng(0))
    write_plain(syn, root / "data" / "my-movies", kg=False)  # the KG comes from year + genres
    profile = yaml.safe_load((REPO / "params" / "example-your-data.yaml").read_text())
    profile["datasets"][0]["path"] = "data/my-movies"  # relative to the profile file
    profile["datasets"][0]["settings"] = {"epochs": 10, "batch_size": 128}
    (root / "mine.yaml").write_text(yaml.safe_dump(profile))
    rc = runner_main(["--profile", str(root / "mine.yaml"), "--runs-dir", str(root / "runs"),
                      "--figures-dir", str(root / "figures"), "--only", "01,02,03,04,05,11", "--cell-timeout", "900"])
    assert rc == 0
    results, figures = root / "runs" / "mine", root / "figures"
    head = json.loads((results / "notebooks" / "01_data.json").read_text())
    assert head["datasets"]["my-movies"]["users"] == syn.n_users
    assert head["datasets"]["my-movies"]["uc_rows"] == len(syn.ratings)
    assert "my-movies: KG built from item attributes (year, genres)" in (figures / "table1.md").read_text()
    assert "KG built from item attributes" in (figures / "table2.md").read_text()
    claims = (figures / "claims.md").read_text()
    assert "| 1 | my-movies | test_auc |" in claims
    page = (figures / "index.html").read_text()
    assert page.index("id=claims>") < page.index("id=table1>") and "my-movies" in page
    assert (figures / "notebooks" / "04_train.html").exists()
