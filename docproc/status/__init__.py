"""What operators see: counts, throughput, timings, queues, workers and documents, as plain data.

The status API and its page (`docproc.status_api`), `/metrics` and `docproc status` all show
these same numbers.
"""
