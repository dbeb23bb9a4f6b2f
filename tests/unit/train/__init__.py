"""Unit tests of ``kgcl_lib.train``."""
