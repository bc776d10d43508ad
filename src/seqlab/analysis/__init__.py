"""seqlab.analysis."""
