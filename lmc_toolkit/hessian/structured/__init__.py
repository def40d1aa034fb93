"""Exact Hessian diagonals of conv-norm-activation-pool chains without Hessian-vector products:
closed forms for the last blocks, forward tangents for the early ones."""

from lmc_toolkit.hessian.structured.norm import StructuredResult, structured_diagonal

__all__ = ["StructuredResult", "structured_diagonal"]
