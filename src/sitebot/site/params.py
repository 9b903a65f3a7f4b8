"""The two parameters every autonomy node takes to know its site (one home for their names,
defaults and help): ``site``, a bundle folder or an installed site's name
(:func:`sitebot.site.bundle.resolve_site`), and ``initial_pose``
(:meth:`sitebot.site.bundle.SiteBundle.initial_pose`)."""
from __future__ import annotations

from sitebot.config.params import ParamSpec, ParamType

__all__ = ["SITE_PARAM", "INITIAL_POSE_PARAM", "SITE_PARAMS"]

S = ParamType.STRING

SITE_PARAM = ParamSpec("site", S, "substation", "site bundle: a folder (bundle.yaml, site.yaml, "
                       "map.yaml) or an installed site's name")
INITIAL_POSE_PARAM = ParamSpec("initial_pose", S, "", "initial map pose: '' = the bundle's "
                               "default start (else its dock), a start, place or dock id, or "
                               "'x y yaw' [m, rad]; 'initialpose' messages move it later")
SITE_PARAMS = (SITE_PARAM, INITIAL_POSE_PARAM)
