"""Tables and figures in the paper's layout, our numbers beside the paper's.

Everything here works on *long* DataFrames — one row per number — with the columns

    ``domain, dataset, text, variant, metric, value`` (+ optional ``std``, ``n``, ``p_value``,
    ``display``, ``source``, ``text_source``, ``na_reason``)

which is both what :func:`kgcl_lib.experiments.summarize` produces from the results store and
the schema of the CSVs transcribed from the paper (``kgcl_lib/paper_tables/table{1..5}.csv``,
loaded by :func:`paper_table`).  :func:`format_table` pivots such a frame into the paper's
layout and renders Markdown and LaTeX with the best value in **bold** and the second best
underlined inside each comparison group (by default: one source, one domain, one metric).

Every row label names the text its numbers were made with (``ours (ml-100k), text: human
synopses``; :data:`kgcl_lib.constants.TEXT_SOURCES`), and cells a dataset cannot fill — copies
of another configuration, see :func:`kgcl_lib.experiments.plan_grid` — read ``n/a (reason)``
and get neither a rank mark nor a p-value.

Figures use seaborn/matplotlib (Agg-safe) and are saved as PNG and PDF by :func:`save_figure`
at the paper's column width so they stay readable when printed.

Modules (every public name is importable from ``kgcl_lib.report``): ``formatting`` (the paper's
transcribed numbers, number formatting, :func:`format_table`, captions), ``figures``, ``tables``
(the paper's Tables 1-5 from a results frame, headline numbers), ``baselines`` (the simple-baselines block
under Tables 2-4 and the runs it reads, issue 29).
"""

from __future__ import annotations

from ..constants import KS, PAPER_TEXT_SOURCES, TEXT_ARM_LABELS, TEXT_SOURCES, VARIANT_LABELS, VARIANT_ORDER, VARIANTS  # noqa: F401
from .formatting import (  # noqa: F401
    DOMAIN_LABELS, KGCN_REPORTED, LOWER_IS_BETTER, METRIC_LABELS, PAPER_DATASET_LABELS, TEXT_LABELS, latex_escape,
    caption, combine_with_paper, domain_of, fmt_number, fmt_p, format_table, paper_table, rank_marks, save_caption,
    save_table, stars,
)
from .figures import (  # noqa: F401
    COLUMN_WIDTH_IN, PAGE_WIDTH_IN, pyplot_and_seaborn, place_labels, plot_align_uniform, plot_cold_start, save_figure,
)
from .baselines import (  # noqa: F401
    BASELINE_LABELS, BASELINE_ORDER, Baselines, baseline_frame, baseline_label, baselines_block, best_baseline, budget_caption,
    load_baselines, with_block,
)
from .tables import (  # noqa: F401
    RESULT_METRICS, paper_comparison, paper_with_p, save_headlines, table1, table1_comparison, table1_long, table2,
    table2_long, table3, table4, table5,
)
from .tables import backbones_of, by_backbone  # noqa: F401
