"""CRC-32C (Castagnoli) and TFRecord's masked form of it.

The fast path is the ``google-crc32c`` package (hardware CRC instructions); without it a table-driven
implementation in pure Python gives the same values, only slower.
"""

from __future__ import annotations

import warnings

_POLY = 0x82F63B78  # reflected Castagnoli polynomial
_MASK_DELTA = 0xA282EAD8


def _make_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _make_table()


def crc32c_reference(data: bytes) -> int:
    """Bytewise table-driven CRC-32C; correct everywhere, about 10 MB/s."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


try:  # pragma: no cover - depends on the environment
    import google_crc32c as _gcrc

    if getattr(_gcrc, "implementation", "c") != "c":
        raise ImportError("google-crc32c without its C extension")
    crc32c = _gcrc.value
    FAST = True
except ImportError:  # pragma: no cover - depends on the environment
    crc32c = crc32c_reference
    FAST = False
    warnings.warn(
        "google-crc32c is not installed: TFRecord checksums use a slow pure-Python CRC-32C "
        "(pip install google-crc32c)",
        stacklevel=2,
    )


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masking: rotate right by 15 bits and add a constant (mod 2**32)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF
