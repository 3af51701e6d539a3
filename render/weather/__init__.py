"""The weather stage: physically grounded effects over image + depth.

Each effect is a pure function here; albumentations transforms wrap them (see DESIGN.md).
"""

from longtail.render.weather.fog import fog, fog_transmission, koschmieder_beta

__all__ = ["fog", "fog_transmission", "koschmieder_beta"]
