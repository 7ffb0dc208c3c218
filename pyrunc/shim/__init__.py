"""The container side: what runs between fork and the user's execve.

Stdlib, pyrunc.linux and the leaf modules (errors, jsonio, trace) only: docs/ARCHITECTURE.md's
table, tests/unit/test_layering.py. Everything here is imported by the host before it
forks, so nothing is imported lazily after pivot_root.
"""
