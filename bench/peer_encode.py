"""Run inside bench/.peer-venv: the face_recognition CLI's per-photo steps, printing the vectors.

The CLI prints only names, so for accuracy parity this repeats exactly what its ``test_image``
does for each photo of the folder it checks (face_recognition 1.3.0): ``load_image_file`` (no EXIF
rotation), shrink to at most 1600 px with LANCZOS if larger, ``face_encodings`` with its defaults
(HOG, upsample 1, 5-point landmarks, 1 jitter); and prints JSON on stdout.

    bench/.peer-venv/bin/python bench/peer_encode.py PHOTO_DIR [--cpus 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import sys
import warnings


def encode(path: str) -> dict:
    """Faces and vectors of one photo, as the face_recognition CLI computes them."""
    warnings.filterwarnings("ignore")  # pkg_resources deprecation notices from the models package
    import face_recognition
    import numpy as np
    import PIL.Image

    image = face_recognition.load_image_file(path)
    height, width = image.shape[:2]
    if max(image.shape) > 1600:  # the CLI's own "scale down image if it's giant"
        pil_img = PIL.Image.fromarray(image)
        pil_img.thumbnail((1600, 1600), PIL.Image.LANCZOS)
        image = np.array(pil_img)
    scale = width / image.shape[1]
    locations = face_recognition.face_locations(image)  # HOG, upsample 1: what encodings use
    vectors = face_recognition.face_encodings(image, known_face_locations=locations)
    faces = [
        {"box": [round(v * scale) for v in box], "vector": [float(x) for x in vec]}
        for box, vec in zip(locations, vectors, strict=True)
    ]
    return {"file": os.path.basename(path), "width": width, "height": height, "faces": faces}


def main() -> None:
    """Encode every photo of a folder (as the CLI lists them) with a process pool."""
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    # The CLI's own file filter (image_files_in_folder): flat, jpg/jpeg/png, case-insensitive.
    files = sorted(
        os.path.join(args.folder, f)
        for f in os.listdir(args.folder)
        if re.match(r".*\.(jpg|jpeg|png)", f, flags=re.I)
    )
    with multiprocessing.get_context("forkserver").Pool(args.cpus) as pool:
        results = pool.map(encode, files, chunksize=1)
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
