"""Model selection over whole runs: a recipe over seeds (``seqlab train --seeds``) and
hyper-parameter search on dev (``seqlab search``)."""
