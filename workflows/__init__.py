"""Workflows: the durable, deterministic state machines of Ferry (no I/O here)."""
