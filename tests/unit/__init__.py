"""Unit tests: ``unit/<package>/`` for a subpackage of ``kgcl_lib``, ``unit/test_<module>.py`` for a top-level module."""
