"""``python -m starter.cli``: the ``c2c`` command, as the components ``c2c up`` starts run it."""

from starter.cli.main import main

main()
