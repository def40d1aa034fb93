"""The toolkit's version (the one `pyproject.toml` declares; `lmc-toolkit --version` prints it)."""

__version__ = "0.1.0"
