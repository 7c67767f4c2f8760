"""forge-go: the Forge parser plugin for Go (tree-sitter).

It registers the ``go`` language (``.go`` files) and answers the ``parse`` hook
with whole functions, methods and type declarations; see :mod:`forge_go.parser`.
"""

__version__ = "0.1.0"
