"""The test suite (docs/testing.md): ``unit/`` mirrors ``kgcl_lib``, ``integration/`` runs across it."""
