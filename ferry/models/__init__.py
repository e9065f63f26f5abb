"""Pydantic models by concern: common names, hosts, steps, results, API bodies, workflow
state, activity payloads. Payload shapes are what Temporal stores: change them only
compatibly (new fields with defaults)."""
