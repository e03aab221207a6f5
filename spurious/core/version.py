"""The package version (recorded with every stored result)."""
__version__ = "0.1.0"
