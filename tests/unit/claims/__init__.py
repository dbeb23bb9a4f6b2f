"""Unit tests of ``kgcl_lib.claims``."""
