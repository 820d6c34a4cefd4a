"""The `ecsportal` command-line client: the portal's API from a shell, standard library only."""

__version__ = "0.1.0"
