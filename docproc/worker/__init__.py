"""Running documents: a worker node's heartbeat, recovery and crash-loop limit, and `docproc
process`, which runs the stages in its own process."""
