"""Data for the trainers: the built-in synthetic sets and user image folders."""
from genimg_fast.data.folders import image_folder
from genimg_fast.data.image_pairs import AlignedFolder, UnalignedFolder
from genimg_fast.data.shape_pairs import OutlinesToShapes, UnpairedShapeStyles
from genimg_fast.data.shapes import ColouredShapes

__all__ = ["ColouredShapes", "OutlinesToShapes", "UnpairedShapeStyles", "image_folder", "AlignedFolder",
           "UnalignedFolder"]
