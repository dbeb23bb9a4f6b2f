"""Unit tests of ``kgcl_lib.runner``."""
