"""Photographs that Debian's wallpaper packages carry, gathered as sharp training content.

scikit-image bundles 13 usable training photos, too few to generalise from. Debian's
`mate-backgrounds` and `plasma-workspace-wallpapers` carry 22 more large photographs under
free licences (GPL-2+ and LGPL-3, per each package's copyright file), picked by eye from the
illustrations beside them. `streamdeblur photos` copies them into one folder, downscaled so
the long side is at most `max_side` (downscaling makes every pixel crisper and decoding
cheaper), for a recipe's `data.sharp_dir`. Installing the packages is a set-up step of the
recipes that use them, never of CI or of running the tool.
"""

from __future__ import annotations

from pathlib import Path

import cv2

from streamdeblur.cache import user_cache_dir
from streamdeblur.errors import BadInput

APT_PACKAGES = ("mate-backgrounds", "plasma-workspace-wallpapers")
DEFAULT_PHOTOS_DIR = user_cache_dir() / "photos"

_MATE = "/usr/share/backgrounds/mate/nature"
_PLASMA = "/usr/share/wallpapers"
# Photographs only: the packages' abstract and rendered pictures would teach flat colour.
PHOTOS = tuple(
    f"{_MATE}/{name}.jpg"
    for name in (
        "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops",
        "Storm", "TwoWings", "Wood", "YellowFlower",
    )
) + tuple(
    f"{_PLASMA}/{name}/contents/images/2560x1600.jpg"
    for name in (
        "BytheWater", "ColdRipple", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
        "OneStandsOut", "Path", "summer_1am",
    )
)  # fmt: skip


def gather_photos(
    out: Path = DEFAULT_PHOTOS_DIR, max_side: int = 1600, sources: tuple[str, ...] = PHOTOS
) -> list[Path]:
    """Write the installed wallpaper photos into `out` as PNG; returns the files written."""
    missing = [src for src in sources if not Path(src).is_file()]
    if missing:
        raise BadInput(
            f"{len(missing)} wallpaper photo(s) not installed (first: {missing[0]}); "
            f"run: apt-get install {' '.join(APT_PACKAGES)}"
        )
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for src in sources:
        image = cv2.imread(src, cv2.IMREAD_COLOR)
        if image is None:
            raise BadInput(f"cannot read {src}")
        scale = max_side / max(image.shape[:2])
        if scale < 1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        # Plasma names every picture 2560x1600.jpg: name the copy after its folder instead.
        stem = Path(src).parents[2].name if src.startswith(_PLASMA) else Path(src).stem
        path = out / f"{stem}.png"
        if not cv2.imwrite(str(path), image):
            raise BadInput(f"cannot write {path}")
        written.append(path)
    return written
