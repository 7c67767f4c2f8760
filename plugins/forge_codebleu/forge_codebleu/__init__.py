"""forge-codebleu: the CodeBLEU metric for Python, JavaScript and Go (``evaluate`` hook).

``from forge_codebleu.score import code_bleu`` scores one candidate against one reference;
the Forge plugin is :mod:`forge_codebleu.plugin`.
"""

__version__ = "0.1.0"
