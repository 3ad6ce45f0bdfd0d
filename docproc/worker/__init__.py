"""What a worker node runs besides the stages: its heartbeat, recovery, the crash-loop limit."""
