"""``python -m celeriac``: the command line."""

from .cli.main import main

main()
