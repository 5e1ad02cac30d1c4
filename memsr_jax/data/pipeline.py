"""Training batches of aligned random (LR, HR) patches, with grain.

The stream is a pure function of (seed, global sample index), so batches do not depend on the number
of worker processes or on where an interrupted run resumes:

  images ─ shuffle (a new permutation every epoch) ─ repeat forever ─ random patch + flips/transpose
         ─ take every `process_count`-th sample from `process_index` ─ batch

Sample j of the global stream uses its own RNG (grain seeds it from the seed and j), so a patch
never depends on what came before it. Process p gets global samples p, p + P, p + 2P, …; the P
processes' batch k together hold exactly the global samples of one global batch of B·P, whatever
P is.

The iterator state is the number of batches taken: `{"batches": k, …}` (plain JSON), the same on
every host, so one host's saved state restores all of them (also with another host count, as long
as the global batch B·P is the same). Restoring it rebuilds the grain iterator at batch k.

Batches: `{"lr": uint8 [B, p, p, 3], "hr": uint8 [B, p·s, p·s, 3]}` (NumPy), as docs/DESIGN.md says.
"""
import concurrent.futures
import os
from typing import Any, Optional, Sequence
import warnings

from absl import flags
import grain
import numpy as np

from memsr_jax.data import folders
from memsr_jax.data import tfds_sr
from memsr_jax.image import io as image_io

PathLike = str | os.PathLike
STATE_VERSION = 1


class FolderSource:
  """Random access to `folders.list_pairs(...)`, decoding (and downscaling) on every access."""

  def __init__(self, dataset: str, data_root: Optional[PathLike], scale: int):
    self.scale = scale
    self.pairs = list(folders.list_pairs(dataset, data_root, scale))
    if not self.pairs:
      raise folders.DatasetNotFoundError(f"no training images found for {dataset!r} "
                                         f"(data_root={data_root!r})")
    self.names = [p.name for p in self.pairs]
    self._lr_sizes = None

  def __len__(self) -> int:
    return len(self.pairs)

  def __getitem__(self, index: int) -> dict[str, Any]:
    pair = self.pairs[index]
    lr, hr = folders.load_pair(pair, self.scale)
    return {"lr": lr, "hr": hr, "name": pair.name}

  @property
  def lr_sizes(self) -> list[tuple[int, int]]:
    """LR (h, w) of every pair from the file headers (no full decode)."""
    if self._lr_sizes is None:
      self._lr_sizes = [_header_lr_size(p, self.scale) for p in self.pairs]
    return self._lr_sizes


def _header_lr_size(pair, scale: int) -> tuple[int, int]:
  """LR (h, w) from the file header; ImageReadError (one line naming the file) when unreadable."""
  if pair.lr_path is not None:
    w, h = image_io.image_size(pair.lr_path)
    return h, w
  w, h = image_io.image_size(pair.hr_path)
  # MATLAB's output size of the mod-cropped HR is exactly HR // scale.
  return h // scale, w // scale


class ConcatSource:
  """Several random-access sources one after the other (datasets named "t91+bsd200")."""

  def __init__(self, sources):
    self.sources = list(sources)
    scales = {getattr(src, "scale", None) for src in self.sources}
    if len(scales - {None}) > 1:
      raise ValueError(f"cannot join sources of different scales {sorted(scales - {None})}")
    self.scale = next(iter(scales - {None}), None)
    self._offsets = np.cumsum([0] + [len(src) for src in self.sources])

  def __len__(self) -> int:
    return int(self._offsets[-1])

  def __getitem__(self, index: int):
    k = int(np.searchsorted(self._offsets, index, side="right") - 1)
    return self.sources[k][index - int(self._offsets[k])]

  @property
  def names(self) -> list[str]:
    return [name for src, n in zip(self.sources, np.diff(self._offsets))
            for name in (getattr(src, "names", None) or [str(i) for i in range(n)])]

  @property
  def lr_sizes(self) -> list[tuple[int, int]]:
    if not all(hasattr(src, "lr_sizes") for src in self.sources):
      raise AttributeError("lr_sizes: not every joined source knows its image sizes")
    return [tuple(sz) for src in self.sources for sz in src.lr_sizes]


class _Subset:
  """Indices `keep` of `source`, still random access."""

  def __init__(self, source, keep: Sequence[int]):
    self.source, self.keep = source, list(keep)

  def __len__(self) -> int:
    return len(self.keep)

  def __getitem__(self, index: int):
    return self.source[self.keep[index]]


def materialize(source, num_threads: int = 4) -> list[dict[str, Any]]:
  """Decodes every item of `source` once and keeps them in memory (small sets: T91, BSD200, …)."""
  def load(i):
    item = source[i]
    return {"lr": np.ascontiguousarray(item["lr"]), "hr": np.ascontiguousarray(item["hr"]),
            "name": str(item.get("name", i))}
  with concurrent.futures.ThreadPoolExecutor(max(1, num_threads)) as pool:
    return list(pool.map(load, range(len(source))))


class EpochShuffle(grain.MapDataset):
  """A new permutation of the parent for every epoch (index // len), cached per epoch.

  Same role as `MapDataset.shuffle`, whose per-index Feistel shuffle costs more than cutting the
  patch for small images; a NumPy permutation per epoch is computed once and reused.
  """

  def __init__(self, parent: grain.MapDataset, seed: int, repeats: int = 1):
    super().__init__(parent)
    self._seed = int(seed)
    self._repeats = int(repeats)  # each parent element appears this many times per epoch
    self._perms: dict[int, np.ndarray] = {}

  def __len__(self) -> int:
    return len(self._parent) * self._repeats

  def __str__(self) -> str:
    return f"EpochShuffle(seed={self._seed})"

  def _permutation(self, epoch: int) -> np.ndarray:
    perm = self._perms.get(epoch)
    if perm is None:
      perm = np.random.default_rng([self._seed, epoch]).permutation(len(self)) % len(self._parent)
      if len(self._perms) > 4:  # iteration moves forward: old epochs are not needed again
        self._perms.clear()
      self._perms[epoch] = perm
    return perm

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    epoch, index_in_epoch = divmod(index, len(self))
    return self._parent[int(self._permutation(epoch)[index_in_epoch])]

  def __getstate__(self):
    state = self.__dict__.copy()
    state["_perms"] = {}
    return state


class RandomPatch(grain.transforms.RandomMap):
  """Aligned random crop (LR p×p at (y, x), HR p·s×p·s at (y·s, x·s)), then (with `augment`) random
  h-flip, v-flip and transpose, the same for LR and HR. Drops everything but "lr" and "hr"."""

  def __init__(self, lr_patch: int, scale: int, augment: bool = True):
    self.lr_patch, self.scale, self.augment = lr_patch, scale, augment

  def random_map(self, element: dict[str, Any], rng: np.random.Generator) -> dict[str, np.ndarray]:
    lr, hr, p, s = element["lr"], element["hr"], self.lr_patch, self.scale
    h, w = lr.shape[:2]
    if hr.shape[:2] != (h * s, w * s):
      raise ValueError(f"image {element.get('name', '?')!r}: HR {hr.shape[:2]} is not {s}x its LR "
                       f"{lr.shape[:2]}; mod-crop the HR to the scale (folders.load_pair does)")
    y = int(rng.integers(0, h - p + 1))
    x = int(rng.integers(0, w - p + 1))
    lr = lr[y:y + p, x:x + p]
    hr = hr[y * s:(y + p) * s, x * s:(x + p) * s]
    hflip, vflip, transpose = rng.integers(0, 2, size=3) if self.augment else (0, 0, 0)
    if hflip:
      lr, hr = lr[:, ::-1], hr[:, ::-1]
    if vflip:
      lr, hr = lr[::-1], hr[::-1]
    if transpose:
      lr, hr = lr.transpose(1, 0, 2), hr.transpose(1, 0, 2)
    return {"lr": lr, "hr": hr}  # views: batching copies them into one contiguous array


class TrainLoader:
  """Infinite iterator of training batches with `get_state()` / `set_state()`.

  Attributes:
    examples_per_epoch: patches per epoch (images × repeat_per_image), all processes together.
    steps_per_epoch: batches per process per epoch (rounded up; epochs flow into each other).
  """

  def __init__(self, batches: grain.MapDataset, *, signature: dict[str, Any],
               examples_per_epoch: int, num_threads: int, num_workers: int,
               prefetch: int):
    self._batches = batches
    self._signature = signature
    self._num_threads, self._num_workers, self._prefetch = num_threads, num_workers, prefetch
    self.examples_per_epoch = examples_per_epoch
    self.steps_per_epoch = -(-examples_per_epoch // signature["global_batch_size"])
    self._consumed = 0
    self._iter = None

  def _start(self):
    ds = self._batches[self._consumed:]
    ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=self._num_threads,
                                              prefetch_buffer_size=self._prefetch))
    if self._num_workers > 0:
      _ensure_flags_parsed()
      ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=self._num_workers))
    return iter(ds)

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    if self._iter is None:
      self._iter = self._start()
    batch = next(self._iter)
    self._consumed += 1
    if self._num_workers > 0:
      # Worker batches live in shared memory that grain frees on garbage collection; plain copies
      # keep callers (and interpreter shutdown) free of that.
      batch = {k: np.array(v) for k, v in batch.items()}
    return batch

  def get_state(self) -> dict[str, Any]:
    """JSON-serialisable position: batches taken so far, plus what the stream depends on."""
    return {"version": STATE_VERSION, "batches": self._consumed, **self._signature}

  def set_state(self, state: dict[str, Any]) -> None:
    """Continues after the batches counted in `state` (from `get_state` of an equal loader)."""
    if state.get("version") != STATE_VERSION:
      raise ValueError(f"data iterator state version {state.get('version')!r} is not "
                       f"{STATE_VERSION}; it was saved by another memsr_jax version")
    # process_index is not compared: every host restores the same state (saved by one of them).
    # A different process_count is fine when the global batch is unchanged.
    stream_keys = ("scale", "lr_patch", "global_batch_size", "seed", "examples_per_epoch",
                   "augment")
    diffs = [f"{k}: saved {state.get(k)!r}, now {self._signature[k]!r}"
             for k in stream_keys if state.get(k) != self._signature[k]]
    if diffs:
      raise ValueError("cannot restore the data iterator: the saved state belongs to a different "
                       "stream (" + "; ".join(diffs) + "). Use the same data settings to resume.")
    batches = int(state["batches"])
    if batches < 0:
      raise ValueError(f"invalid iterator state: batches={batches}")
    self.close()
    self._consumed = batches

  def close(self) -> None:
    """Stops prefetch threads/processes (a later `next` starts them again)."""
    it, self._iter = self._iter, None
    if it is not None and hasattr(it, "close"):
      it.close()


def _ensure_flags_parsed() -> None:
  """grain's worker processes read absl flags; outside an absl app (tests, notebooks) nothing has
  parsed them, so accept their defaults."""
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def _stream_seeds(seed: int) -> tuple[int, int]:
  shuffle_seed, patch_seed = np.random.SeedSequence(seed).generate_state(2)
  return int(shuffle_seed), int(patch_seed)


def _check_sizes(source, lr_patch: int, scale: int, dataset: str, skip_small: bool):
  """Keeps the images whose LR side is ≥ lr_patch; errors (or warns, with skip_small) otherwise."""
  if hasattr(source, "lr_sizes"):
    sizes = [tuple(s) for s in source.lr_sizes]
  elif isinstance(source, list):
    sizes = [tuple(item["lr"].shape[:2]) for item in source]
  else:
    sizes = [tuple(source[i]["lr"].shape[:2]) for i in range(len(source))]
  if isinstance(source, list):
    names = [item["name"] for item in source]
  else:
    names = list(getattr(source, "names", None) or [str(i) for i in range(len(sizes))])
  small = [i for i, (h, w) in enumerate(sizes) if h < lr_patch or w < lr_patch]
  if not small:
    return source, len(sizes)
  listing = ", ".join(f"{names[i]} (LR {sizes[i][0]}x{sizes[i][1]})" for i in small[:20])
  if len(small) > 20:
    listing += f", … ({len(small) - 20} more)"
  message = (f"{len(small)} of {len(sizes)} images of {dataset!r} are smaller than the LR patch "
             f"{lr_patch}x{lr_patch} at x{scale} (HR images need at least "
             f"{lr_patch * scale}x{lr_patch * scale} pixels): {listing}")
  if not skip_small:
    raise folders.DatasetError(message + ". Use a smaller lr_patch, remove these images, or set "
                               "skip_small=True to leave them out.")
  warnings.warn(message + "; skipping them (skip_small=True).", stacklevel=2)
  small_set = set(small)
  keep = [i for i in range(len(sizes)) if i not in small_set]
  if not keep:
    raise folders.DatasetError(f"no image of {dataset!r} is large enough for LR patch {lr_patch} "
                               f"at x{scale}")
  if isinstance(source, list):
    return [source[i] for i in keep], len(keep)
  return _Subset(source, keep), len(keep)


def make_train_loader(dataset: str, data_root: Optional[PathLike], scale: int, lr_patch: int,
                      batch_size: int, seed: int, *, process_index: int = 0,
                      process_count: int = 1, num_workers: int = 0, source=None,
                      cache: bool = True, skip_small: bool = False, augment: bool = True,
                      repeat_per_image: int = 1, num_threads: Optional[int] = None,
                      prefetch: int = 4) -> TrainLoader:
  """An endless, seeded, resumable iterator of training batches for this process.

  Args:
    dataset: a name or folder for `folders.list_pairs` (`div2k`, `t91`, `skimage_train`, a path…);
      several joined with "+" (`t91+bsd200`) are used together.
    data_root: folder holding the named sets (None: built-in sets or `dataset` is a path).
    scale: SR scale s.
    lr_patch: LR patch side p (HR patches are p·s).
    batch_size: per-process batch B.
    seed: stream seed; the same seed gives the same batches (any `num_workers`).
    process_index, process_count: this host's share of the global stream (multi-host training).
    num_workers: grain worker processes (0: the main process with `num_threads` threads). Workers
      get a pickled copy of the source, cached images included.
    source: a random-access source (`len`, `[i] -> {"lr", "hr", "name"}`, e.g.
      `tfds_sr.load_prepared_set(...)`) or the `out_dir` of `tfds_sr.prepare` as a path string;
      None reads the folder through `list_pairs` / `load_pair`.
    cache: decode every image once and keep it in memory (right for T91, BSD200, skimage_train and
      fine for DIV2K with enough RAM); False decodes per sample (use workers).
    skip_small: leave out images smaller than the patch with a warning instead of raising.
    augment: random h-flip, v-flip and transpose (False: plain crops).
    repeat_per_image: patches per image per epoch (an epoch is a random order of `repeat_per_image`
      copies of every image; 0 means 1). Only changes what an "epoch" is, e.g. for tiny sets.
    num_threads: grain reading threads in each process (default 1 when cached, 4 otherwise).
    prefetch: batches buffered ahead.
  """
  if scale < 1 or lr_patch < 1 or batch_size < 1:
    raise ValueError(f"scale, lr_patch and batch_size must be positive, got {scale}, {lr_patch}, "
                     f"{batch_size}")
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index must be in [0, {process_count}), got {process_index}")
  names = [n.strip() for n in str(dataset).split("+") if n.strip()] or [str(dataset)]
  if source is None:
    parts = [FolderSource(n, data_root, scale) for n in names]
    source = parts[0] if len(parts) == 1 else ConcatSource(parts)
  elif isinstance(source, (str, os.PathLike)):
    parts = [tfds_sr.load_prepared_set(n, scale, source) for n in names]
    source = parts[0] if len(parts) == 1 else ConcatSource(parts)
  repeat_per_image = max(1, int(repeat_per_image))
  source_scale = getattr(source, "scale", scale)
  if source_scale != scale:
    raise ValueError(f"the source holds x{source_scale} pairs but scale={scale} was asked for")
  # Sizes come from metadata/headers where the source has them, so a bad patch size fails fast.
  if cache and not hasattr(source, "lr_sizes"):
    source = materialize(source)
  source, num_examples = _check_sizes(source, lr_patch, scale, dataset, skip_small)
  if cache and not isinstance(source, list):
    source = materialize(source)

  shuffle_seed, patch_seed = _stream_seeds(seed)
  stream = (EpochShuffle(grain.MapDataset.source(source), shuffle_seed, repeat_per_image)
            .repeat()
            .random_map(RandomPatch(lr_patch, scale, augment), seed=patch_seed))
  batches = stream[process_index::process_count].batch(batch_size, drop_remainder=True)
  signature = {"dataset": str(dataset), "scale": scale, "lr_patch": lr_patch,
               "batch_size": batch_size, "seed": seed, "process_index": process_index,
               "process_count": process_count, "global_batch_size": batch_size * process_count,
               "examples_per_epoch": num_examples * repeat_per_image, "augment": augment}
  if num_threads is None:
    num_threads = 1 if cache else 4
  return TrainLoader(batches, signature=signature,
                     examples_per_epoch=num_examples * repeat_per_image, num_threads=num_threads,
                     num_workers=num_workers, prefetch=prefetch)
