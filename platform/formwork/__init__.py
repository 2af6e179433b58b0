"""Formwork: a low-code platform driven by metadata."""

__version__ = "0.2.0"
