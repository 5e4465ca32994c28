"""The ``celeriac`` command line: one module per command group."""
