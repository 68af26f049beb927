"""`make bench`: what permheal costs and how fast it heals (python -m benchmarks.run)."""
