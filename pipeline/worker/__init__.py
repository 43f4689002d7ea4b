"""Worker processes: fase1-executor (decides), orchestrator (executes), scheduler (only wakes)."""
