"""Unit tests of ``kgcl_lib.text``."""
