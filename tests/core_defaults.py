"""Global tensor defaults that differ from the inputs', for the core's device and dtype contracts.

The core promises that every tensor it makes takes its device and dtype from its inputs, never
from torch's global defaults. On a CPU-only machine a dropped ``device=x.device`` cannot show
(the default device is the CPU too): inside :func:`foreign_defaults` a factory call without
``device=`` makes a tensor on the ``meta`` device, and the first operation that mixes it with a
CPU input raises ("Tensor on device meta is not on the expected device cpu"); a factory call
without ``dtype=`` makes a float64 tensor where the inputs are float32 (or the reverse), which a
test sees in its outputs' dtypes or in a mixed-dtype error.
"""
import contextlib

import torch


@contextlib.contextmanager
def foreign_defaults(dtype=torch.float64, device="meta"):
    """Default dtype ``dtype`` and default device ``device`` inside the block (restored after)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(old)
