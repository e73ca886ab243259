"""Benchmark orchestration: runs, results files and summaries."""
