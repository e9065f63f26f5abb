"""Workspaces: the Run's repository, kept away from git running on DevBox-written files."""

from activities.workspace.activities import WorkspaceActivities

__all__ = ["WorkspaceActivities"]
