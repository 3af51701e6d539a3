"""Labels from render buffers, and the exporters that turn frame records into standard formats."""

from longtail.classes import CLASSES, SemanticClass, get_class, list_classes, target_classes

__all__ = ["CLASSES", "SemanticClass", "get_class", "list_classes", "target_classes"]
