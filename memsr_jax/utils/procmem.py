"""This process's memory: peak RSS, the peak RSS growth of one call, and glibc allocator settings
that make RSS follow live memory.

A call's memory is measured by resetting the process's peak RSS (VmHWM) to its current RSS through
/proc/self/clear_refs just before the call, then reading how far VmHWM rose over the RSS at that
moment (Linux only; elsewhere the reading is None).
"""
import ctypes
import ctypes.util
import pathlib
import resource
import sys

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


def tighten_allocator(mmap_threshold: int = 1 << 20) -> bool:
  """Asks glibc to serve blocks ≥ `mmap_threshold` with mmap (returned to the OS on free), to trim
  the heap eagerly and to use few arenas, so that freed tiles and compile-time scratch do not keep
  the process's RSS high. No-op (False) off glibc."""
  if not sys.platform.startswith("linux"):
    return False
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    ok = libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
    ok &= libc.mallopt(_M_TRIM_THRESHOLD, mmap_threshold)
    ok &= libc.mallopt(_M_ARENA_MAX, 2)
    return bool(ok)
  except (OSError, AttributeError):
    return False


def peak_rss_bytes() -> int:
  """This process's peak resident set size (Linux reports ru_maxrss in KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def status_kb(field: str) -> int:
  """A field of /proc/self/status in KiB (VmRSS, VmHWM, …); KeyError when absent."""
  for line in pathlib.Path("/proc/self/status").read_text().splitlines():
    if line.startswith(field + ":"):
      return int(line.split()[1])
  raise KeyError(field)


def reset_peak() -> int:
  """Resets VmHWM to the current RSS; returns that RSS in bytes (OSError off Linux)."""
  pathlib.Path("/proc/self/clear_refs").write_text("5")
  return status_kb("VmRSS") * 1024


def peak_growth_bytes(base_bytes: int) -> int:
  """How far the peak RSS rose over `base_bytes` (what `reset_peak` returned)."""
  return status_kb("VmHWM") * 1024 - base_bytes


def call_peak_bytes(fn, *args):
  """(fn(*args), its peak RSS growth in bytes); the growth is None where VmHWM cannot be reset."""
  try:
    base = reset_peak()
  except (OSError, KeyError):
    return fn(*args), None
  out = fn(*args)
  try:
    return out, peak_growth_bytes(base)
  except (OSError, KeyError):
    return out, None
