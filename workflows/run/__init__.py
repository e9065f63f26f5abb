"""RunWorkflow, split by concern: timeline, questions, turns, review, lifecycle, projection."""
