"""Patch ids of the Run workflow (docs/architecture.md, "Changing a workflow").

Each marks a change of the workflow's command order behind `workflow.patched` (with its id), so
histories written before it replay as they ran. Remove one (with its old branch) only
once no open Run and no recorded history in tests/histories predates it.
"""

LIST_TARGETS_LOCAL = "list-targets-local"  # 2026-11-22: list targets in a local activity
STOP_TURN_ON_END = "stop-turn-on-end"  # 2026-11-22: a cancelled or failed turn is stopped
CHECKPOINT_BEFORE_HIBERNATE = "checkpoint-before-hibernate"  # 2026-12-05: save work first
