"""Thread counts of the numeric libraries, set for each computation that uses them.

torch keeps one thread count per process, and whatever code last set it decides how every
later torch computation in that process splits its sums. A Beam worker runs many songs and
stages in one process, so a stage that leaves torch at the count it found, or at the one it
chose, makes another stage's results depend on what ran before it. Each torch computation
runs inside `torch_threads(n)` with its own configured count, and the count it found is put
back afterwards. (CTranslate2 models take their count when built and are cached per count;
Silero VAD's ONNX model runs on one thread, as faster-whisper builds it.)
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

# torch's count is process-wide: two threads of one worker must not interleave their settings.
_TORCH_THREADS_LOCK = threading.RLock()


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with torch's intra-op thread count at `count` (at least 1), then restore it.

    Parameters
    ----------
    count : int
        Threads for torch's intra-op parallelism inside the block; values below 1 mean 1.
    """
    import torch

    with _TORCH_THREADS_LOCK:
        found = torch.get_num_threads()
        torch.set_num_threads(max(1, int(count)))
        try:
            yield
        finally:
            torch.set_num_threads(found)
