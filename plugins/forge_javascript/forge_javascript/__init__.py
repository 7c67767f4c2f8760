"""Forge plugin: mine JavaScript (``.js``, ``.mjs``, ``.cjs``, ``.jsx``) with tree-sitter."""

__version__ = "0.1.0"
