"""The syscall layer: the only package that talks to the kernel through ctypes."""
