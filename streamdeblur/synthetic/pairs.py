"""One synthetic training pair of whichever blur a recipe describes: motion or defocus."""

from __future__ import annotations

import numpy as np

from streamdeblur.synthetic.blur import BlurPair, BlurRecipe, render_pair
from streamdeblur.synthetic.defocus import DefocusRecipe, render_defocus_pair


def render_any_pair(
    rng: np.random.Generator,
    height: int,
    width: int,
    recipe: BlurRecipe | DefocusRecipe,
    photos: tuple[str, ...] | None = None,
) -> BlurPair:
    if isinstance(recipe, DefocusRecipe):
        return render_defocus_pair(rng, height, width, recipe, photos)
    return render_pair(rng, height, width, recipe, photos)
