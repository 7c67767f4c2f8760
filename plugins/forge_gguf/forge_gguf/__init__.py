"""forge-gguf: merge the adapter, write GGUF with Forge's own converter, quantise, check it."""
