"""Independent QEMU test hosts (own kernel, own audit subsystem) for the project's own tests."""

from .fleet import Fleet, FleetError
from .image import Image, ImageError, cache_dir, ensure_image, unavailable_reason
from .vm import VM

__all__ = ["VM", "Fleet", "FleetError", "Image", "ImageError", "cache_dir", "ensure_image", "unavailable_reason"]
