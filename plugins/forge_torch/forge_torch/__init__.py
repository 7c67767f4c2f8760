"""forge_torch: train adapters with PyTorch, transformers and PEFT; run models for evaluation."""

__version__ = "0.1.0"
