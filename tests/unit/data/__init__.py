"""Unit tests of ``kgcl_lib.data``."""
