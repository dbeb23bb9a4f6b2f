"""Unit tests of ``kgcl_lib.model``."""
