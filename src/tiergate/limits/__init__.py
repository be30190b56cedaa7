"""Rate limits as continuously refilling token buckets, with no clock inside.

Callers pass ``now`` (seconds) into every call, so the same code serves the emulator, the
gateway, and tests that move time by hand.
"""

from tiergate.limits.bucket import TokenBucket
from tiergate.limits.headers import ratelimit_headers, retry_after_value, rfc3339
from tiergate.limits.limiter import Admission, LimitStatus, ModelLimiter, RateLimits

__all__ = [
    "Admission",
    "LimitStatus",
    "ModelLimiter",
    "RateLimits",
    "TokenBucket",
    "ratelimit_headers",
    "retry_after_value",
    "rfc3339",
]
