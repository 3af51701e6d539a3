"""The web scene editor (``longtail editor``): compose a scenario on a map, see it rendered with
its labels, save the YAML that ``longtail render`` consumes. Needs the ``editor`` extra."""
