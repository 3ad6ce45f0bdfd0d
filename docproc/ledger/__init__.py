"""The ledger: every received document, its state, stage and worker, kept in Redis."""
