"""The container side: what runs between fork and the user's execve.

Stdlib and pyrunc.linux only; everything here is imported by the host before it
forks, so nothing is imported lazily after pivot_root.
"""
