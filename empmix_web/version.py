"""The package version: one source for ``__version__``, ``$lib_version`` and the wheel's name."""

VERSION = "0.2.0"
