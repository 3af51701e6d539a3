"""Labels from render buffers, and the exporters that turn frame records into standard formats.
(The class table they use is shared vocabulary: ``longtail.classes``.)"""
