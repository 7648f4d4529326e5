"""Every query of the engine, one module per table group (STYLE §12)."""
