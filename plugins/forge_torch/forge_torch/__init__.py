"""forge_torch: train adapters with PyTorch, transformers and PEFT; run models for evaluation."""

import warnings

__version__ = "0.1.0"

# PEFT (0.21) reads `model.is_gradient_checkpointing`, which transformers 5 deprecates with a
# FutureWarning on every adapter it makes or loads: nothing a Forge user can act on.
warnings.filterwarnings(
    "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
)
