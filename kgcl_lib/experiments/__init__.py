"""The paper's grid of runs and the results store the notebooks share.

A run is named by a :class:`RunSpec` — dataset, variant (``base`` = L_base, ``cl_genre``,
``cl_title_genre``), text arm (``without`` / ``with`` the dataset's own text / ``llm`` synopses),
optionally the text source it must use (``human``, ``tmdb``, ``wikipedia``, ``metadata``, … see
:data:`kgcl_lib.constants.TEXT_SOURCES`), seed, γ and free ``TrainConfig`` overrides — whose
:attr:`RunSpec.run_id` is a stable hash.  :func:`run_grid` trains the runs that are not finished
yet and stores, under ``<results_dir>/runs/<run_id>/``:

* ``config.json``   — the spec, the exact ``TrainConfig``, evaluation settings, encoder model,
  pairs provenance, dataset checksum/provenance and timings;
* ``metrics.json``  — test AUC/F1, Recall/NDCG@K, Inter/Intra@20, alignment/uniformity,
  NDCG@100 by user-activity percentile;
* ``complete.json`` — ``{"run_id", "config_key", "finished_at"}``, written last: a run is
  finished when it holds this marker with the config key the caller expects (:func:`is_finished`);
* ``topk.npy``      — ``int64[n_test_users, 100]`` top-100 items per test user, best first;
* ``test_users.npy``— ``int64[n_test_users]`` the users those rows belong to;
* ``content_emb.npy`` — ``float32[n_items, d]`` the trained content embeddings;
* ``user_ndcg.npy`` / ``user_recall.npy`` — ``float64[n_test_users, len(user_metric_ks)]``
  per-user NDCG@K / Recall@K, ``user_metric_ks.npy`` their K, ``user_activity.npy`` each test
  user's training positives (runs stored before these existed: :mod:`kgcl_lib.claims` rebuilds them).

A run is written into a temporary sibling folder (``runs/.<run_id>.<host>-<pid>.<random>.tmp``)
and renamed onto ``runs/<run_id>`` only when complete, so an interrupted run (Ctrl-C, SIGKILL, a
lost Ray worker) never leaves a folder mixing two runs: the previous complete run, or none, stays
(:func:`execute_run`). The config key covers the ``TrainConfig``, the evaluation settings, the
effective thread count and the device type, because results at 1 and 2 threads (or CPU and GPU)
differ at ≈1e-6 (:func:`config_key`). :func:`run_grid` runs the unfinished specs in this process
or as Ray tasks (``executor="ray"``, :mod:`kgcl_lib.experiments.executors`).

**No duplicate runs.**  When a dataset lacks what a cell of the grid needs — no text at all
(the "with" arm would equal "without"), or too few genres/titles (both CL templates fall back to
the same KG-attribute pairs) — :func:`plan_grid` maps the cell to the one configuration it
equals; that configuration is trained once and the cell gets ``not_applicable.json`` (reason,
``same_as``) instead of results.  :func:`load_results` returns such cells with ``na_reason`` set
and NaN metrics, so tables print "n/a (reason)" and no p-value is computed for them.  A CL run
whose pairs came from KG attributes is reported as variant ``cl_kg`` ("+CL KG attributes").

Work that notebooks hand to each other also lives under ``results_dir`` (``text/``, ``pairs/``):
:func:`text_embeddings` and :func:`content_pairs` load a stored file when present and build and
store it otherwise, so any notebook reruns alone.  :func:`load_results` flattens the store into
one DataFrame; :func:`summarize` and :func:`ttests` turn it into the long frames
:mod:`kgcl_lib.report` renders.

Layout (one module per job; each imports only the ones before it)
-----------------------------------------------------------------
:mod:`~kgcl_lib.experiments.spec` (what a run is, its id and config key) →
:mod:`~kgcl_lib.experiments.inputs` (datasets, splits, text, pairs, synopses) →
:mod:`~kgcl_lib.experiments.evaluation` (test users and every metric of one run) →
:mod:`~kgcl_lib.experiments.execute` (train + evaluate + write one run) →
:mod:`~kgcl_lib.experiments.store` (reading the results store, manifests) →
:mod:`~kgcl_lib.experiments.grid` (plan and run the grid through :mod:`kgcl_lib.experiments.executors`).
Every public name is importable from :mod:`kgcl_lib.experiments` itself.
"""

from __future__ import annotations

from ..constants import KS, NO_TEXT_VARIANTS, PERCENTILES, TEXT_ARMS, TEXT_SOURCES, VARIANT_TEMPLATE, VARIANTS  # noqa: F401
from .spec import (  # noqa: F401
    COMPLETE_MARKER,
    EVAL_MASKS,
    NOT_APPLICABLE,
    PARTIAL_SUFFIX,
    EvalConfig,
    RunIntegrityError,
    RunSpec,
    RunText,
    config_key,
    grid_specs,
    is_finished,
    mark_complete,
    resolve_device_type,
    run_dir,
    train_config,
    verify_run,
)
from .inputs import (  # noqa: F401
    available_datasets,
    content_pairs,
    kg_caption_notes,
    kg_source,
    llm_synopses,
    llm_synopses_path,
    make_split,
    open_dataset,
    open_datasets,
    resolve_run_text,
    text_embeddings,
    with_substitute_text,
)
from .evaluation import (  # noqa: F401
    evaluate,
    test_users_and_truth,
)
from .execute import (  # noqa: F401
    RunInputs,
    execute_run,
    expected_keys,
    forget_opened,
    prepare_inputs,
    run_lock,
    run_text,
)
from .store import (  # noqa: F401
    best_model,
    caption_info,
    cold_start_frame,
    load_manifest,
    load_results,
    load_run,
    pairs_source,
    resolve_dirs,
    save_manifest,
    summarize,
    trained,
    ttests,
)
from .grid import (  # noqa: F401
    ensure_llm_synopses,
    plan_grid,
    run_grid,
)
