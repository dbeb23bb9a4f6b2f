"""kgcl_lib: knowledge-graph semantic contrastive learning for recommendation (Kim et al.).

Data flows one way; each module imports only from modules upstream of it::

    storage, constants                     (no project imports)
    data      raw files -> KGDataset, splits, neighbour tables
    text      synopsis embeddings (frozen encoder), LLM synopses
    pairs     content-content pairs for the contrastive loss
    model     KGCN + semantic text + content contrastive loss (torch)
    scoring   full-catalogue KGCN scores and top-K lists of a trained model
    train     trainer, run config, CLI
    metrics   CTR / top-K / cold-start / diversity / embedding quality (numpy, no torch)
    experiments, report   runs of the paper's grid, tables and figures
"""

__version__ = "0.1.0"
