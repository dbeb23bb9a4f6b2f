"""Unit tests of ``kgcl_lib.pairs``."""
