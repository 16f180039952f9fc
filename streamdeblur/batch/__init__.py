"""Offline batch jobs: a folder tree of videos, resumable, on local worker processes or Ray."""

from streamdeblur.batch.runner import BatchOptions, BatchSummary, run_batch

__all__ = ["BatchOptions", "BatchSummary", "run_batch"]
