#!/usr/bin/python3
"""Writes the committed JPEG fixtures of org.diffusion4j.io.ImageFolderTest with PIL, and PIL's own reading of them.

Run with Debian's python3 (python3-pil, python3-numpy):   /usr/bin/python3 tools/make_image_fixtures.py

Outputs (java/src/test/resources/io/images/):
  exif_o1.jpg ... exif_o8.jpg   a 16 x 16 white RGB image with a red 4 x 4 block at its stored top-left corner and a
                                green one at its stored top-right corner, saved with EXIF orientation 1 ... 8
  exif_transpose_pil.npy        uint8 [8, 16, 16, 3]: PIL's ImageOps.exif_transpose(Image.open(f)).convert("RGB")
                                of each file, what the loader must give (it applies the orientation as PIL does)
  exif_o3.png, exif_o6.png, exif_o8.png   the same image as PNGs with an eXIf chunk of orientation 3, 6, 8
  exif_png_pil.npy              uint8 [3, 16, 16, 3]: PIL's exif_transpose of those PNGs
  cmyk.jpg                      an 8 x 8 image, columns 0-3 grey (128, 128, 128) and 4-7 red (220, 30, 30), saved
                                as a CMYK JPEG (PIL writes an Adobe APP14 marker and inverted CMYK); PIL's
                                convert("RGB") reads the two colours back exactly
"""
import os

import numpy as np
from PIL import Image, ImageOps

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "java", "src", "test", "resources", "io",
                   "images")
os.makedirs(OUT, exist_ok=True)

base = Image.new("RGB", (16, 16), (255, 255, 255))
for x in range(4):
    for y in range(4):
        base.putpixel((x, y), (255, 0, 0))
        base.putpixel((15 - x, y), (0, 200, 0))
ref = []
for o in range(1, 9):
    exif = Image.Exif()
    exif[0x0112] = o
    path = os.path.join(OUT, f"exif_o{o}.jpg")
    base.save(path, quality=100, exif=exif.tobytes())
    ref.append(np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"), dtype=np.uint8))
np.save(os.path.join(OUT, "exif_transpose_pil.npy"), np.stack(ref))

ref = []
for o in (3, 6, 8):
    exif = Image.Exif()
    exif[0x0112] = o
    path = os.path.join(OUT, f"exif_o{o}.png")
    base.save(path, exif=exif.tobytes())
    ref.append(np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"), dtype=np.uint8))
np.save(os.path.join(OUT, "exif_png_pil.npy"), np.stack(ref))

cmyk = Image.new("RGB", (8, 8), (220, 30, 30))
cmyk.paste((128, 128, 128), (0, 0, 4, 8))
cmyk.convert("CMYK").save(os.path.join(OUT, "cmyk.jpg"), quality=100)
back = np.asarray(Image.open(os.path.join(OUT, "cmyk.jpg")).convert("RGB"))
assert back[0, 0].tolist() == [128, 128, 128] and back[0, 7].tolist() == [220, 30, 30], back[0].tolist()
