"""The ``surrodyn`` command line: parses arguments and calls the library, nothing more."""

__all__: list[str] = []
