"""Engines: what runs a Run's turns inside its DevBox (one module per engine)."""
