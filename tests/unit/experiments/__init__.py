"""Unit tests of ``kgcl_lib.experiments``."""
