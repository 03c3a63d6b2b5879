"""A small reference client for the mobile API (used by tests and benchmarks)."""

from gridgov.client.client import GridgovClient, LocalCopy, UploadReport

__all__ = ["GridgovClient", "LocalCopy", "UploadReport"]
