"""Throughput, latency, scale and OCR benchmarks of docproc (not run by the tests).

Run `python -m benchmarks.run [--quick]`; figures go to benchmarks/results/latest.{json,md}.
"""
