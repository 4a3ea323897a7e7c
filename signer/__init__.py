"""The signing core: TikTok web tokens from warm Chromium contexts or pure Python.

```python
async with Signer() as signer:
    result = await signer.sign(SignRequest("https://webcast.tiktok.com/webcast/im/fetch/?aid=1988"))
    result.signed_url, result.user_agent, result.navigator
```
"""

from .config import SignerSettings
from .errors import (
    DeadlineExceeded,
    EngineUnavailable,
    InvalidSignRequest,
    SelfCheckFailed,
    SignError,
)
from .models import Navigator, SignRequest, SignResult
from .profiles import PROFILES, Profile, get_profile
from .signer import Signer
from .tokenerrors import TokenDecodeError

__all__ = [
    "PROFILES",
    "DeadlineExceeded",
    "EngineUnavailable",
    "InvalidSignRequest",
    "Navigator",
    "Profile",
    "SelfCheckFailed",
    "SignError",
    "SignRequest",
    "SignResult",
    "Signer",
    "SignerSettings",
    "TokenDecodeError",
    "get_profile",
]
