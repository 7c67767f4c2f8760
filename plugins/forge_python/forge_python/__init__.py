"""Forge plugin that mines Python source into whole code units with tree-sitter."""

__version__ = "0.1.0"
