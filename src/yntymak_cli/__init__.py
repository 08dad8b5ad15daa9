"""yntymak-cli: offline-first field data collection for the command line."""

__version__ = "0.1.0"
