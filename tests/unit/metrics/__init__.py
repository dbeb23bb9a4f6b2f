"""Unit tests of ``kgcl_lib.metrics``."""
