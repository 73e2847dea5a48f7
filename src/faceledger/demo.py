"""`make demo`: build a small collection from public-domain portraits, ingest it, search it.

The portraits ship inside the matplotlib and scikit-image wheels (Grace Hopper; astronaut
Eileen Collins), so the demo runs offline and never touches anyone else's photos.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib
from PIL import Image, ImageOps

__all__ = ["build_collection", "main"]

OUT = Path("demo-out")


def _portraits() -> dict[str, Image.Image]:
    from skimage import data  # imported here: only the demo needs scikit-image

    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return {
        "hopper": Image.open(hopper).convert("RGB"),
        "astronaut": Image.fromarray(data.astronaut()).convert("RGB"),
        "camera": Image.fromarray(data.camera()).convert("RGB"),  # a photo with no face
    }


def build_collection(root: Path) -> tuple[Path, Path, Path]:
    """Write a folder of derived photos, a manifest with provenance, and a separate probe."""
    p = _portraits()
    hopper, astronaut, camera = p["hopper"], p["astronaut"], p["camera"]
    photos = root / "collection"
    photos.mkdir(parents=True)
    derived = {
        "hopper_original.jpg": hopper,
        "hopper_small.png": hopper.resize((hopper.width // 2, hopper.height // 2)),
        "hopper_crop.jpg": hopper.crop((60, 40, 480, 520)),
        "astronaut.png": astronaut,
        "astronaut_crop.jpg": astronaut.crop((100, 0, 380, 300)),
        "camera.png": camera,
    }
    composite = Image.new(
        "RGB", (hopper.width + astronaut.width, max(hopper.height, astronaut.height))
    )
    composite.paste(hopper, (0, 0))
    composite.paste(astronaut, (hopper.width, 0))
    derived["group_hopper_astronaut.jpg"] = composite
    for name, image in derived.items():
        image.save(photos / name)
    manifest = root / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["path", "source_url", "page_url", "retrieved_at", "uploader_region", "caption"]
        )
        writer.writerow(
            [
                "collection/hopper_original.jpg",
                "https://history.example.org/img/hopper.jpg",
                "https://history.example.org/people/grace-hopper",
                "2024-03-01T10:00:00Z",
                "US-VA",
                "Rear Admiral Grace Hopper",
            ]
        )
        writer.writerow(
            [
                "collection/astronaut.png",
                "https://space.example.gov/img/collins.png",
                "https://space.example.gov/crew/collins",
                "2024-05-17T08:30:00Z",
                "US-IL",
                "Eileen Collins (uploaded from Illinois)",
            ]
        )
    probe = root / "probe_hopper_mirrored.jpg"
    ImageOps.mirror(hopper.crop((30, 20, 500, 560))).save(probe)
    return photos, manifest, probe


def _run(*args: str, user: str | None = None, key: str | None = None, quiet: bool = False) -> str:
    command = ["faceledger", "--library", str(OUT / "library")]
    command += ["--as", user] if user else []
    command += list(args)
    shown = ("FACELEDGER_API_KEY=... " if key else "") + shlex.join(command)
    if not quiet:
        print(f"\n$ {shown}", flush=True)
    exe = Path(sys.executable).with_name("faceledger")
    # Acting as anyone but the owner takes that user's API key, as a user would pass it.
    env = {**os.environ, "FACELEDGER_API_KEY": key} if key else None
    done = subprocess.run([str(exe), *command[1:]], check=True, env=env,
                          stdout=subprocess.PIPE if quiet else None, text=True)  # fmt: skip
    return done.stdout or ""


def main() -> None:
    """Build the demo collection in ./demo-out, ingest it and search it."""
    shutil.rmtree(OUT, ignore_errors=True)
    photos, manifest, probe = build_collection(OUT)
    print(f"Built a demo collection in {OUT}/ from public-domain portraits.")
    _run("init")
    _run("ingest", str(photos), "--manifest", str(manifest))
    _run("stats")
    _run("search", str(probe), "--top-k", "5")
    print(
        "\nThe astronaut photo's manifest row says it was uploaded from Illinois (US-IL), so "
        "the default policy keeps that face in the vault, out of search. Only a custodian with "
        "a signed attestation can count it:"
    )
    statement = OUT / "attestation.txt"
    statement.write_text("I will use vault access only for legal obligations of the operator.\n")
    _run("users", "add", "casey", "--role", "custodian")
    print("\n$ faceledger users key casey    # the key goes to casey, who alone uses it")
    key = json.loads(_run("users", "key", "casey", "--json", quiet=True))["api_key"]
    _run("attest", "casey", "--statement-file", str(statement), user="casey", key=key)
    _run("discovery", "count", "--blocked", "--jurisdiction", "US-IL", user="casey", key=key)


if __name__ == "__main__":
    main()
