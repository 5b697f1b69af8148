"""Data for the trainers: the built-in synthetic sets and user image folders."""
from genimg_fast.data.folders import image_folder
from genimg_fast.data.shapes import ColouredShapes

__all__ = ["ColouredShapes", "image_folder"]
