"""tinycoder: the small code model Forge ships as its default base (trained by this package)."""
