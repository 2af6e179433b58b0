"""Formwork: a low-code platform driven by metadata."""

__version__ = "0.1.0"
