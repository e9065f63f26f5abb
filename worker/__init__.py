"""The Ferry worker: runs RunWorkflow and the activities of this worker host."""
