"""How the outside world reaches c2c: the HTTP API, the CLI, and the operations they share."""
