"""docproc: a watched-folder document ingestion daemon."""

__version__ = "0.1.0"
