"""Unit tests of ``kgcl_lib.report``."""
