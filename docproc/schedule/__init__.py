"""Scheduled work: one leading Beat, daily times, the daily report and retention."""
