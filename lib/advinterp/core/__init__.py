"""The bottom layer: paths, parameter declarations and checks, devices and seeds, progress
bars, the cache, and small private helpers. It imports nothing else of ``advinterp``."""
