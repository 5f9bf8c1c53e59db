"""SMS segment counting and splitting: see :mod:`agentsms.smstext`.

The implementation lives outside ``core`` so that carrier adapters (which may import only
``providers.base`` and pure helpers) split and encode texts exactly as they are counted.
"""

from __future__ import annotations

from agentsms.smstext import (
    GSM7_MULTI_PART,
    GSM7_SINGLE,
    UCS2_MULTI_PART,
    UCS2_SINGLE,
    Encoding,
    SegmentInfo,
    count_segments,
    encode_gsm7,
    is_gsm7,
    split_segments,
)

__all__ = [
    "GSM7_MULTI_PART",
    "GSM7_SINGLE",
    "UCS2_MULTI_PART",
    "UCS2_SINGLE",
    "Encoding",
    "SegmentInfo",
    "count_segments",
    "encode_gsm7",
    "is_gsm7",
    "split_segments",
]
