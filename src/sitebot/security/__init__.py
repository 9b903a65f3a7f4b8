"""Authority that is authenticated, not claimed (docs/security.md): the per-site key
(:mod:`.keys`), signed assertions (:mod:`.authority`) and the supervisor's authenticated
requests (:mod:`.requests`).  No rclpy."""
from __future__ import annotations

from sitebot.config.params import ParamSpec, ParamType
from sitebot.security.authority import (LOWEST_ROLE, Assertion, Authority, AuthorityError, Grant,
                                        ReplayGuard, command_digest, plan_digest, sign, verify)
from sitebot.security.keys import (KEY_ENV, KeyFileError, default_key_path, ensure_key, load_key,
                                   resolve_key_path)

__all__ = ["KEY_PARAM", "LOWEST_ROLE", "Assertion", "Authority", "AuthorityError", "Grant",
           "ReplayGuard", "command_digest", "plan_digest", "sign", "verify", "KEY_ENV",
           "KeyFileError", "default_key_path", "ensure_key", "load_key", "resolve_key_path"]

#: the parameter every signing or verifying node declares
KEY_PARAM = ParamSpec("authority_key_file", ParamType.STRING, "",
                      f"the site's authority key (32 bytes, mode 0600; '' = ${KEY_ENV}, else "
                      "~/.config/sitebot/authority.key; `sitebot key init` makes one)",
                      read_only=True)
