"""Helpers every layer uses: user errors and flags (cli), terminal output (console),
JSON and safe output locations, process memory, optional dependencies, the precision
policy, pytrees, config lookup and help, numeric tolerances."""
