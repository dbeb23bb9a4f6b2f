"""Notebook 08's cold-start inspector in a real browser: JupyterLab headless on 127.0.0.1 with a
token, Debian's chromium driven by Playwright for Python (no browser download).

The test runs 08 on a small results store (the smoke profile's grid, four models, two epochs),
moves the percentile slider and the model dropdown, and checks that the table shown equals what
:func:`kgcl_lib.inspector.bucket_view` returns for the new selection. Screenshots of 08 (with the
inspector) and of 05 (executed in JupyterLab) go to the test's folder and, when
``$KGCL_SCREENSHOT_DIR`` is set, are copied there.

Needs ``pip install -e ".[browser]"`` (Playwright) and ``apt-get install chromium``; ``.ci/run``
installs both. Skips, naming what is missing, where they are not installed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from kgcl_lib import constants, experiments, inspector, runner
from kgcl_lib.runner.notebooks import kernel_config

from tests.helpers import REPO

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
#: The notebook in the visible tab (notebooks opened earlier stay in the page, hidden).
ACTIVE_PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
#: The models of the small grid: enough for a baseline and two models to switch between.
VARIANTS, TEXTS = ["base", "cl_genre"], ["without", "with"]


def _chromium() -> str:
    path = shutil.which("chromium")
    if not path:
        pytest.skip("Debian's chromium package is not installed (apt-get install chromium; .ci/run does this)")
    return path


def _sync_playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install -e '.[browser]'; .ci/run does this)")
    return sync_playwright


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A results store with the smoke profile's data and grid settings (fewer epochs, four models)."""
    root = tmp_path_factory.mktemp("browser-store")
    profile = runner.load_profile("smoke").globals
    overrides = {"*": {**profile["train_overrides"].get("*", {}), "epochs": 2}}
    specs = experiments.grid_specs(profile["datasets"], VARIANTS, TEXTS, profile["seeds"], overrides=overrides)
    results = root / "runs"
    experiments.run_grid(specs, results, dataset_options=profile["dataset_options"], text_model=profile["text_model"],
                         pair_n=profile["pair_n"], ev=experiments.EvalConfig(scoring=profile["scoring"], ndcg=profile["ndcg"]),
                         threads=1, progress=False)
    experiments.save_manifest(results, "grid", specs, seeds=list(profile["seeds"]), scoring=profile["scoring"],
                              ndcg=profile["ndcg"])
    params = {"profile": "smoke", "results_dir": str(results), "figures_dir": str(root / "figures"),
              "datasets": profile["datasets"], "dataset_options": profile["dataset_options"]}
    return {"results": results, "params": params, "profile": profile}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(store, tmp_path_factory):
    """JupyterLab on 127.0.0.1 with a token, serving parameterised copies of notebooks 05 and 08."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    root = tmp_path_factory.mktemp("lab")
    for name in ("05_table2", "08_cold_start"):
        nb = load_notebook_node(str(REPO / "notebooks" / f"{name}.ipynb"))
        declared = runner.declared_parameters(REPO / "notebooks" / f"{name}.ipynb")
        nb = parameterize_notebook(nb, {k: v for k, v in store["params"].items() if k in declared})
        nbformat.write(nb, root / f"{name}.ipynb")
    settings = root / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "JUPYTER_CONFIG_DIR": str(root / "config"), "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(root / "lab-settings"), "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces"),
           "OMP_NUM_THREADS": "1"}
    env.pop(inspector.HEADLESS_ENV, None)  # the widgets, not the static fallback
    log = open(root / "jupyterlab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
                             "--ServerApp.open_browser=False", *(["--allow-root"] if os.geteuid() == 0 else [])],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start; log: {root / 'jupyterlab.log'}:\n"
                                       + (root / "jupyterlab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield {"url": url, "token": token, "root": root}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    """One chromium for the module: Playwright's sync API allows one running session per thread,
    so the JupyterLab page and the report page share it (each in its own context)."""
    executable = _chromium()
    sync_playwright = _sync_playwright()
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(lab, browser):
    context = browser.new_context(viewport={"width": 1500, "height": 1900})
    yield context.new_page()
    context.close()


def _screenshot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path))
    extra = os.environ.get("KGCL_SCREENSHOT_DIR")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / name)
    return path


def _accept_dialogs(page) -> list[str]:
    """Accept any modal JupyterLab dialog (e.g. a kernel choice on a slow start) so it does not
    intercept the clicks that follow; returns the dialogs' texts (for the failure message)."""
    seen = []
    for _ in range(3):
        dialog = page.locator(".jp-Dialog")
        if not dialog.count() or not dialog.first.is_visible():
            break
        seen.append(dialog.first.inner_text()[:200])
        accept = dialog.first.locator(".jp-Dialog-button.jp-mod-accept")
        (accept.first.click() if accept.count() else page.keyboard.press("Escape"))
        page.wait_for_timeout(500)
    return seen


def _open_and_run_all(page, lab, name: str) -> None:
    """Open a notebook, wait for its kernel, and run every cell from the Run menu (retried once
    when no cell started: a click during the kernel's start-up is dropped)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    # ?reset: a fresh workspace with only this notebook open, so "Run All" and the panel selectors
    # cannot reach the notebook an earlier test left open (seen on a fresh clone: Run All went there)
    page.goto(f"{lab['url']}/lab/tree/{name}.ipynb?reset&token={lab['token']}")
    page.wait_for_selector(f"{ACTIVE_PANEL} .jp-Cell", timeout=60_000)
    page.wait_for_selector(r"text=/Python 3 \(ipykernel\) \| Idle/", timeout=90_000)
    dialogs: list[str] = []

    def click(locator) -> None:  # a modal dialog that pops up late (kernel choice, ...) is accepted first
        for _ in range(8):
            dialogs.extend(_accept_dialogs(page))
            try:
                locator.click(timeout=5_000)
                return
            except PlaywrightTimeout:
                continue
        raise AssertionError(f"{name}: could not click {locator}; dialogs seen: {dialogs}")

    for _ in range(3):
        # make the shown notebook the current widget: Run All acts on the current one, which can
        # still be the notebook opened before it (seen under load)
        click(page.locator(f"{ACTIVE_PANEL} .jp-Cell").first)
        click(page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")))
        click(page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")))
        try:  # a code cell of the shown notebook (not one in a hidden tab) has a prompt "[n]:" or "[*]:"
            page.wait_for_selector(f"{ACTIVE_PANEL} .jp-InputPrompt:text-matches('\\[(\\d+|\\*)\\]')",
                                   timeout=40_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"{name}: 'Run All Cells' did not start any cell (dialogs accepted: {dialogs})")


def _shown_table(page) -> list[list[str]]:
    return page.eval_on_selector(
        ".kgcl-bucket-table",
        "t => Array.from(t.querySelectorAll('tbody tr')).map(r => Array.from(r.children).map(c => c.textContent.trim()))")


def _expected(store_view: inspector.InspectorStore, dataset: str, model, percentile: float) -> tuple[list, object]:
    models = [constants.BASELINE, model]
    view = inspector.bucket_view({inspector.model_label(m): store_view.runs(dataset, m) for m in models}, percentile)
    shown = inspector.format_bucket_view(view)
    return [[label, *map(str, row)] for label, row in zip(shown.index, shown.to_numpy().tolist())], view


def _wait_for_table(page, previous, timeout_s: float = 60) -> list[list[str]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            rows = _shown_table(page)
        except Exception:  # the table is being replaced
            rows = None
        if rows and rows != previous:
            return rows
        time.sleep(0.25)
    raise AssertionError(f"the inspector's table did not change within {timeout_s} s (still {previous})")


def _check_numbers(rows, view):
    """The shown cells parse back to bucket_view's numbers (mean ± sd, 4 decimals)."""
    for row in rows[:2]:
        label, cells = row[0], row[3:]
        for metric, cell in zip(inspector.BUCKET_METRICS, cells):
            mean = float(cell.split("±")[0])
            assert mean == pytest.approx(view.loc[label, metric], abs=5e-5), (label, metric, cell)


def test_inspector_in_jupyterlab(store, lab, page, tmp_path):
    data = inspector.InspectorStore(store["results"], dataset_options=store["profile"]["dataset_options"])
    dataset = data.datasets()[0]
    percentiles = data.percentiles(dataset)
    best = data.best_model(dataset)

    # The bucket numbers agree with the NDCG@100 each run stored at training time (an independent path).
    for run in data.runs(dataset, best):
        stored = data.frame.set_index("run_id").loc[run.run_id, f"cold_ndcg@100_p{percentiles[0]:g}"]
        assert inspector.bucket_metrics(run, percentiles[0])["ndcg@100"] == pytest.approx(stored, abs=1e-9)

    _open_and_run_all(page, lab, "08_cold_start")
    page.wait_for_selector(".kgcl-bucket-table", timeout=120_000)
    shown = _shown_table(page)
    want, view = _expected(data, dataset, best, percentiles[0])
    assert shown == want
    _check_numbers(shown, view)

    # Percentile slider: one step to the right (keyboard on the slider's handle).
    target = next(p for p in percentiles[1:] if _expected(data, dataset, best, p)[0] != want)
    steps = percentiles.index(target)
    handle = page.locator(".widget-slider .noUi-handle").first
    handle.scroll_into_view_if_needed()
    handle.click()
    for _ in range(steps):
        handle.press("ArrowRight")
    shown = _wait_for_table(page, shown)
    want, view = _expected(data, dataset, best, target)
    assert shown == want, f"after moving the slider to {target:g} %"
    _check_numbers(shown, view)

    # Model dropdown: another model against the baseline.
    other = next(m for m in data.models(dataset) if m not in (constants.BASELINE, best))
    page.locator(".widget-dropdown", has_text="vs baseline").locator("select").select_option(
        label=inspector.model_label(other))
    shown = _wait_for_table(page, shown)
    want, view = _expected(data, dataset, other, target)
    assert shown == want, f"after choosing {other}"
    _check_numbers(shown, view)

    page.wait_for_timeout(1500)  # let the curve and the user lists of this selection render
    page.locator(".kgcl-bucket-table").scroll_into_view_if_needed()
    assert _screenshot(page, tmp_path, "08_cold_start_inspector.png").stat().st_size > 10_000


def test_table2_notebook_in_jupyterlab(store, lab, page, tmp_path):
    _open_and_run_all(page, lab, "05_table2")
    # The closing cell renders generated sentences; its first bullet names the dataset.
    dataset = store["profile"]["datasets"][0]
    try:
        page.wait_for_selector(f"{ACTIVE_PANEL} .jp-RenderedMarkdown li:has-text('{dataset}, AUC')", timeout=240_000)
    except Exception as exc:  # say what the notebook shows instead (an error output, cells still queued)
        _screenshot(page, tmp_path, "05_table2_failed.png")
        errors = page.locator(f"{ACTIVE_PANEL} [data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
        prompts = page.locator(f"{ACTIVE_PANEL} .jp-InputPrompt").all_inner_texts()
        raise AssertionError(f"05_table2's closing sentences did not render: prompts {prompts}, "
                             f"stderr/errors {[e[-300:] for e in errors]}") from exc
    page.locator(f"{ACTIVE_PANEL} .jp-RenderedMarkdown table").first.scroll_into_view_if_needed()
    assert _screenshot(page, tmp_path, "05_table2.png").stat().st_size > 10_000


# --- the report page (figures/<profile>/index.html) ----------------------------------------
@pytest.fixture(scope="module")
def plain_page(browser):
    """A chromium page without JupyterLab (the report page is a static file)."""
    context = browser.new_context(viewport={"width": 1300, "height": 1600})
    yield context.new_page()
    context.close()


def test_report_index_html(store, plain_page, tmp_path):
    """The runner's report page on a real results store: notebooks 05 and 11 write Table 2 and the
    claims table, 08 the figures; the page shows the claims table first, and its images load."""
    import papermill

    params = store["params"]
    figures, executed = Path(params["figures_dir"]), store["results"] / "notebooks"
    executed.mkdir(parents=True, exist_ok=True)
    for name in ("05_table2", "08_cold_start", "11_claims"):
        nb = REPO / "notebooks" / f"{name}.ipynb"
        keys = runner.declared_parameters(nb)
        papermill.execute_notebook(str(nb), str(executed / nb.name), kernel_name="python3", cwd=str(nb.parent),
                                   parameters={k: v for k, v in {**params, "n_boot": 200}.items() if k in keys},
                                   progress_bar=False, config=kernel_config(tmp_path))
    from kgcl_lib.report.html import write_report

    index = write_report(figures, executed, "smoke")
    page = plain_page
    page.goto(index.as_uri())
    first_table = page.locator("table").first
    assert first_table.locator("th").first.inner_text().strip() == "Claim"
    verdicts = first_table.locator("tbody tr").count()
    assert verdicts >= 10  # one row per claim and metric
    assert page.locator("h2").first.inner_text().startswith("Claims")
    images = page.locator("img")
    assert images.count() >= 2
    loaded = page.evaluate("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
    assert loaded and all(loaded), loaded
    links = page.locator("#notebooks ~ ul a")
    assert links.count() == 3
    href = links.first.get_attribute("href")
    page.goto((figures / href).as_uri())
    assert "05" in page.title() or page.locator("body").inner_text().count("Table 2") >= 1
    page.goto(index.as_uri())
    path = tmp_path / "report_index.png"
    page.screenshot(path=str(path), full_page=True)
    extra = os.environ.get("KGCL_SCREENSHOT_DIR")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)
    assert path.stat().st_size > 10_000
