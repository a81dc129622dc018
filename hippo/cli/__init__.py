"""The ``hippo`` command line: one small module per command."""
