"""seqlab: neural sequence models for NLP, from the equations to published numbers."""

__version__ = "0.1.0"
