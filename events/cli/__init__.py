"""The command line: argument parsing and dispatch to each command (the top layer)."""
