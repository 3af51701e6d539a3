"""longtail: headless synthetic driving data for the long tail.

The parts install as sub-packages: ``longtail.worlds`` (scenarios, scenes, PyBullet worlds),
``longtail.render`` (cameras, capture, weather) and ``longtail.labelers`` (labels, exporters).
"""

__version__ = "0.1.0"
