"""Ingest benchmark: faceledger's ingest CLI against the face_recognition CLI on the same photos.

The measurements, in one run, on one copy of the shared photos laid out flat (the peer's CLI
reads one folder, not recursively), deduplicated by SHA-256 (faceledger stores a duplicate once,
so both tools get the same distinct photos):

1. Throughput, images/s and faces/s, from each CLI's wall time as a separate process:
     faceledger --library LIB ingest PHOTOS --json        (after `init`, timed apart)
     face_recognition --cpus 2 EMPTY_KNOWN_DIR PHOTOS     (from bench/.peer-venv)
   The peer computes a vector for every face of every photo in PHOTOS (its "unknown" folder, run
   in a pool of --cpus processes); the known folder is empty so it adds no photos of its own.
   and ``faceledger ingest --engine ray`` (a local Ray started by the run) the same way.
2. Time per stage (read + hash, decode, detect, embed) for faceledger, in this process, one core,
   with the pipeline's own stage function (ingest.work.analyse_item); and the stage seconds the
   CLI run itself reports (summed over its workers; write is the driver's one writer).
3. Accuracy parity: the peer's vectors (bench/peer_encode.py, the CLI's steps) against
   faceledger's, matched per photo. Same dlib model; they differ in detection settings: the peer
   detects at up to 1600 px with upsample 1, faceledger at up to 1024 px with no upsample.

    .venv/bin/python bench/bench_ingest.py                 # everything
    .venv/bin/python bench/bench_ingest.py --only peer     # the peer alone
    .venv/bin/python bench/bench_ingest.py --only faceledger,ray,peer,stages,parity
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
import numpy as np

PARTS = ("faceledger", "peer", "same-settings", "ray", "stages", "parity")
# The peer's detection settings, as faceledger settings: up to 1600 px, one upsampling pass.
PEER_SETTINGS = {"FACELEDGER_DETECT_MAX_SIDE": "1600", "FACELEDGER_UPSAMPLE": "1"}
FACELEDGER_CLI = common.REPO / ".venv/bin/faceledger"
MATCH = 0.6  # dlib's same-person threshold: a looser match than this is not "the same face"


# -- the photo set -------------------------------------------------------------------------------
def flat_photo_dir(source: Path) -> Path:
    """Copy each distinct photo under ``source`` (by SHA-256) into one flat folder (idempotent)."""
    files, seen = [], set()
    for path in common.image_files(source):
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        if sha not in seen:
            seen.add(sha)
            files.append(path)
    target = common.CACHE / "ingest-photos-distinct"
    names = {
        f"{i:03d}_{'__'.join(path.relative_to(source).parts)}": path for i, path in enumerate(files)
    }
    if target.exists() and sorted(p.name for p in target.iterdir()) == sorted(names):
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name, path in names.items():
        shutil.copyfile(path, target / name)
    return target


def photo_set_facts(folder: Path) -> dict:
    """Count, bytes and distinct contents: faceledger stores a duplicate once, the peer twice."""
    files = sorted(folder.iterdir())
    shas = {hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    return {
        "images": len(files),
        "distinct_images": len(shas),
        "megabytes": sum(p.stat().st_size for p in files) / 2**20,
    }


# -- the two CLIs ----------------------------------------------------------------------------------
def timed_process(command: list[str], env: dict | None = None) -> tuple[float, str, str]:
    """Wall time of one process run to the end; its stdout and stderr."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return wall, done.stdout, done.stderr


def run_faceledger_cli(
    photos: Path, cpus: int, settings: dict | None = None, engine: str = "local"
) -> dict:
    """``faceledger ingest`` of the photo folder into a fresh library; wall time and counts."""
    if not FACELEDGER_CLI.exists():
        return {"status": "pending", "reason": f"{FACELEDGER_CLI} does not exist yet"}
    env = os.environ | {"FACELEDGER_WORKERS": str(cpus)} | (settings or {})
    env.pop("RAY_ADDRESS", None)  # --engine ray starts a Ray of its own, as a user's first run
    engine_args = ["--engine", engine]
    with tempfile.TemporaryDirectory(dir=common.CACHE, prefix="ingest-lib-") as tmp:
        library = Path(tmp) / "library"
        base = [str(FACELEDGER_CLI), "--library", str(library)]
        init_s, _, _ = timed_process([*base, "init", "--json"], env)
        # Fixed cost of one run (interpreter, imports, catalog) without any photo.
        empty = Path(tmp) / "empty"
        empty.mkdir()
        startup_s, _, _ = timed_process([*base, "ingest", str(empty), *engine_args, "--json"], env)
        wall, stdout, _ = timed_process([*base, "ingest", str(photos), *engine_args, "--json"], env)
    summary = json.loads(stdout)
    inputs = sum(1 for _ in photos.iterdir())
    return {
        "status": "measured",
        "command": f"faceledger --library LIB ingest PHOTOS --engine {engine} --json",
        "engine": engine,
        "workers": cpus,
        "settings": settings or "defaults",
        "init_s": init_s,
        "empty_run_s": startup_s,
        "wall_s": wall,
        # Every input photo was handled; identical files were analysed once (stored by SHA-256).
        "images": inputs,
        "images_analysed": summary.get("photos_new"),
        "faces": summary.get("faces"),
        "errors": len(summary.get("errors", [])),
        "stage_seconds": summary.get("stage_seconds"),
        "summary": summary,
    }


def peer_bin() -> Path:
    """The peer venv's bin directory, created by bench/peer_env.sh if missing."""
    done = subprocess.run(
        ["bash", str(common.BENCH / "peer_env.sh")], capture_output=True, text=True, check=True
    )
    return Path(done.stdout.strip().splitlines()[-1])


def run_peer_cli(photos: Path, cpus: int) -> dict:
    """``face_recognition --cpus N EMPTY PHOTOS``: wall time; faces counted from its output."""
    binary = peer_bin() / "face_recognition"
    known = common.CACHE / "ingest-known-empty"
    known.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"PYTHONWARNINGS": "ignore"}  # pkg_resources deprecation notices
    command = [str(binary), "--cpus", str(cpus), str(known)]
    # Fixed cost of one run without any photo (its import loads the dlib models).
    startup_s, _, _ = timed_process([*command, str(known)], env)
    wall, stdout, _ = timed_process([*command, str(photos)], env)
    # One line per face ("path,unknown_person"), or "path,no_persons_found" for a photo without.
    lines = [line.rsplit(",", 1) for line in stdout.splitlines() if "," in line]
    faces = sum(1 for _, name in lines if name != "no_persons_found")
    return {
        "status": "measured",
        "command": f"face_recognition --cpus {cpus} EMPTY_KNOWN_DIR PHOTOS",
        "cpus": cpus,
        "empty_run_s": startup_s,
        "wall_s": wall,
        "images": len({path for path, _ in lines}),
        "images_analysed": len({path for path, _ in lines}),
        "images_without_faces": sum(1 for _, name in lines if name == "no_persons_found"),
        "faces": faces,
    }


# -- faceledger's stages ---------------------------------------------------------------------------
def stage_profile(photos: Path) -> tuple[dict, dict[str, list[np.ndarray]]]:
    """Seconds per stage over all photos, one core, the pipeline's stage function; the vectors."""
    from faceledger.config import Settings
    from faceledger.faces import FaceEngine
    from faceledger.ingest import SourceItem, digests
    from faceledger.ingest.distribute import limits_of
    from faceledger.ingest.work import analyse_item
    from faceledger.records import Provenance

    settings = Settings.from_env()
    engine = FaceEngine(settings.detector, settings.detect_max_side, settings.upsample)
    limits = limits_of(settings)
    totals = dict.fromkeys(("read_hash", "decode", "detect", "embed"), 0.0)
    vectors: dict[str, list[np.ndarray]] = {}
    for path in sorted(photos.iterdir()):
        item = SourceItem(Provenance("folder", str(path)), path=path)
        t0 = time.perf_counter()
        sha = digests(item.read(limits.max_file_bytes)).sha256
        totals["read_hash"] += time.perf_counter() - t0
        analysis = analyse_item(item, sha, engine, limits)
        totals["read_hash"] += analysis.seconds.get("read", 0.0)
        for key in ("decode", "detect", "embed"):
            totals[key] += analysis.seconds.get(key, 0.0)
        vectors[path.name] = [face.vector for face in analysis.faces]
    faces = sum(len(v) for v in vectors.values())
    return {
        "seconds": totals,
        "images": len(vectors),
        "faces": faces,
        # landmarks + 128-d vector per face: what the model itself costs on one core
        "embed_ms_per_face": 1e3 * totals["embed"] / faces if faces else None,
        "settings": {
            "detector": settings.detector,
            "detect_max_side": settings.detect_max_side,
            "upsample": settings.upsample,
        },
    }, vectors


# -- parity ----------------------------------------------------------------------------------------
def peer_vectors(photos: Path, cpus: int) -> dict[str, list[dict]]:
    """The peer's faces per photo, computed by its own code in its own venv."""
    python = peer_bin() / "python"
    command = [str(python), str(common.BENCH / "peer_encode.py"), str(photos), "--cpus", str(cpus)]
    _, stdout, _ = timed_process(command, os.environ | {"PYTHONWARNINGS": "ignore"})
    return {entry["file"]: entry["faces"] for entry in json.loads(stdout)}


def parity(ours: dict[str, list[np.ndarray]], peer: dict[str, list[dict]]) -> dict:
    """Match each photo's faces by vector (greedy, nearest first, under MATCH) and compare."""
    distances, only_peer, only_ours, peer_only_sizes = [], 0, 0, []
    per_photo_count_equal = 0
    for name in sorted(set(ours) | set(peer)):
        a = ours.get(name, [])
        b = [np.asarray(face["vector"], np.float32) for face in peer.get(name, [])]
        per_photo_count_equal += len(a) == len(b)
        pairs = sorted(
            (float(np.linalg.norm(x - y)), i, j) for i, x in enumerate(a) for j, y in enumerate(b)
        )
        used_a, used_b = set(), set()
        for dist, i, j in pairs:
            if dist < MATCH and i not in used_a and j not in used_b:
                used_a.add(i)
                used_b.add(j)
                distances.append(dist)
        only_ours += len(a) - len(used_a)
        only_peer += len(b) - len(used_b)
        for j, face in enumerate(peer.get(name, [])):
            if j not in used_b:
                top, right, bottom, left = face["box"]
                peer_only_sizes.append(max(right - left, bottom - top))
    dist = np.asarray(distances)
    return {
        "faces_faceledger": sum(len(v) for v in ours.values()),
        "faces_peer": sum(len(v) for v in peer.values()),
        "matched": len(distances),
        "only_faceledger": only_ours,
        "only_peer": only_peer,
        "only_peer_face_sizes_px": sorted(peer_only_sizes),
        "photos_with_same_face_count": per_photo_count_equal,
        "photos": len(set(ours) | set(peer)),
        "matched_distance_median": float(np.median(dist)) if len(dist) else None,
        "matched_distance_p95": float(np.percentile(dist, 95)) if len(dist) else None,
        "matched_distance_max": float(dist.max()) if len(dist) else None,
    }


# -- limits and sizing -----------------------------------------------------------------------------
def model_limit(stages: dict, ours: dict, cpus: int) -> dict:
    """The fastest this model could go on ``cpus`` cores, and how close the ingest run came."""
    seconds = stages["seconds"]
    embed_floor = seconds["embed"] / cpus
    compute_floor = (seconds["decode"] + seconds["detect"] + seconds["embed"]) / cpus
    return {
        "cpus": cpus,
        "faces": stages["faces"],
        "embed_ms_per_face": stages["embed_ms_per_face"],
        "embed_floor_s": embed_floor,
        "compute_floor_s": compute_floor,
        "ingest_wall_s": ours["wall_s"],
        "ingest_minus_empty_run_s": ours["wall_s"] - ours["empty_run_s"],
        "ingest_over_compute_floor": ours["wall_s"] / compute_floor,
    }


def sizing(ours: dict, cpus: int) -> dict:
    """Core-hours for 10^6, 10^8, 10^10 photos from the measured end-to-end cost per photo.

    A cluster divides the compute, not the writing: one writer commits every photo, so its
    time per photo is a floor of its own, whatever the number of nodes.
    """
    # The marginal cost: a run's fixed start (an empty run) is nothing at 10^6 photos.
    core_s = (ours["wall_s"] - ours["empty_run_s"]) * cpus / ours["images"]
    write_s = ours["stage_seconds"]["write"] / ours["images"]
    rows = []
    for photos in (1e6, 1e8, 1e10):
        core_hours = photos * core_s / 3600
        rows.append({
            "photos": photos,
            "core_hours": core_hours,
            "hours_100x32": core_hours / 3200,  # the compute alone, spread over 3,200 cores
            "writer_hours": photos * write_s / 3600,
        })  # fmt: skip
    return {"cpus": cpus, "core_s_per_photo": core_s, "write_s_per_photo": write_s, "rows": rows}


# -- report ----------------------------------------------------------------------------------------
def rate(result: dict) -> dict:
    """images/s and faces/s from a CLI result."""
    if result.get("status") != "measured":
        return {}
    return {
        "images_per_s": result["images"] / result["wall_s"],
        "faces_per_s": (result["faces"] or 0) / result["wall_s"],
    }


def spread(result: dict) -> str:
    """' (all: 11.2, 12.0 s)' when there were several runs."""
    walls = result.get("all_wall_s", [])
    return f" (runs: {', '.join(f'{w:.1f}' for w in walls)})" if len(walls) > 1 else ""


def tables(report: dict) -> str:
    """Markdown tables as pasted into BENCHMARKS.md."""
    out = []
    ours, peer = report.get("faceledger", {}), report.get("peer", {})
    rows = [
        ("faceledger ingest", ours),
        (
            "faceledger ingest, peer's detection settings",
            report.get("faceledger_peer_settings", {}),
        ),
        ("faceledger ingest --engine ray (local Ray)", report.get("faceledger_ray", {})),
        ("face_recognition CLI (peer)", peer),
    ]
    if any(r.get("status") == "measured" for _, r in rows):
        out += [
            "| tool | images (analysed) | faces | wall s, fastest | images/s | faces/s "
            "| empty run s |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for label, r in rows:
            if r.get("status") == "measured":
                out.append(
                    f"| {label} | {r['images']} ({r['images_analysed']}) | {r['faces']} | "
                    f"{r['wall_s']:.1f}{spread(r)} | {r['images_per_s']:.2f} | "
                    f"{r['faces_per_s']:.2f} | "
                    f"{r['empty_run_s']:.1f} |"
                )
            elif r:
                out.append(f"| {label} | pending | | | | | |")
        if "ratio_images_per_s" in report:
            same_run = report.get("same_run_ratios", [])
            out.append(
                f"\nfaceledger / peer: {report['ratio_images_per_s']:.2f}× images/s, "
                f"{report['ratio_faces_per_s']:.2f}× faces/s (fastest runs); same-run ratios "
                f"(images/s, each repeat): {', '.join(f'{r:.2f}' for r in same_run)}; faces "
                f"found: {report['face_share_of_peer']:.1%} of the peer's"
            )
        if "ray" in report:
            ray = report["ray"]
            out.append(
                f"--engine ray / local: {ray['ratio_images_per_s']:.2f}× images/s; its overhead: "
                f"{ray['overhead_fixed_s']:.1f} s fixed (Ray start, an empty run) and "
                f"{1e3 * ray['overhead_per_photo_s']:.0f} ms per photo beyond that"
            )
        if "ratio_same_settings_images_per_s" in report:
            out.append(
                "faceledger with the peer's detection settings / peer: "
                f"{report['ratio_same_settings_images_per_s']:.2f}× images/s"
            )
    stages = report.get("stages")
    if stages:
        seconds = dict(stages["seconds"])
        total = sum(seconds.values())
        out += [
            "",
            "| stage (one core, sequential) | total s | ms / image | share |",
            "|---|---:|---:|---:|",
        ]
        for key, value in seconds.items():
            out.append(
                f"| {key} | {value:.2f} | {1e3 * value / stages['images']:.1f} | "
                f"{100 * value / total:.0f}% |"
            )
    in_run = [(k, report[k]) for k in ("faceledger", "faceledger_ray")
              if report.get(k, {}).get("stage_seconds")]  # fmt: skip
    if in_run:
        names = list(in_run[0][1]["stage_seconds"])
        out += [
            "",
            "| stage, in the CLI run (s summed over workers; write: the driver) | "
            + " | ".join(k for k, _ in in_run) + " |",
            "|---|" + "---:|" * len(in_run),
        ]
        for name in names:
            out.append(f"| {name} | " + " | ".join(
                f"{r['stage_seconds'][name]:.2f}" for _, r in in_run) + " |")  # fmt: skip
    limit = report.get("model_limit")
    if limit:
        out.append(
            f"\nThe model's limit on {limit['cpus']} cores: "
            f"{limit['embed_ms_per_face']:.1f} ms per face × {limit['faces']} faces ÷ "
            f"{limit['cpus']} = {limit['embed_floor_s']:.1f} s; "
            f"all compute stages ÷ {limit['cpus']}: {limit['compute_floor_s']:.1f} s; ingest took "
            f"{limit['ingest_wall_s']:.1f} s ({limit['ingest_over_compute_floor']:.2f}× the "
            "compute floor)."
        )
    sizing = report.get("sizing")
    if sizing:
        out += [
            "",
            f"Sizing from {sizing['core_s_per_photo']:.3f} core-s per photo (the fastest local "
            f"run less an empty run, × {sizing['cpus']} cores ÷ photos) and one writer at "
            f"{1e3 * sizing['write_s_per_photo']:.1f} ms per photo:",
            "",
            "| photos | core-hours | compute on 100 nodes × 32 cores, hours "
            "| one writer, hours (the floor whatever the nodes) |",
            "|---:|---:|---:|---:|",
        ]
        for row in sizing["rows"]:
            out.append(
                f"| {row['photos']:.0e} | {row['core_hours']:,.0f} | "
                f"{row['hours_100x32']:,.1f} | {row['writer_hours']:,.1f} |"
            )
    par = report.get("parity")
    if par:
        out += [
            "",
            "| parity | faceledger | peer |",
            "|---|---:|---:|",
            f"| faces found | {par['faces_faceledger']} | {par['faces_peer']} |",
            f"| found by one only | {par['only_faceledger']} | {par['only_peer']} |",
            f"\nmatched faces: {par['matched']}; vector distance between the two tools' vectors "
            f"of the same face: median {par['matched_distance_median']:.3f}, "
            f"p95 {par['matched_distance_p95']:.3f}, max {par['matched_distance_max']:.3f} "
            f"(match threshold 0.6); sizes of faces only the peer found (px): "
            f"{par['only_peer_face_sizes_px']}",
        ]
    return "\n".join(out)


def main() -> None:
    """Run the chosen parts, print tables, write bench/results/ingest-*.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=common.FACES_DIR)
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma list of {PARTS}")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each CLI; fastest counts")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    if parts - set(PARTS):
        parser.error(f"unknown part(s) {parts - set(PARTS)}")
    common.CACHE.mkdir(parents=True, exist_ok=True)
    photos = flat_photo_dir(args.photos)
    report = {
        "benchmark": "ingest",
        "machine": common.machine(),
        "args": vars(args),
        "photo_set": photo_set_facts(photos),
        "load_average_start": os.getloadavg(),
    }
    print(f"photos: {report['photo_set']}  (load average {os.getloadavg()[0]:.2f})")
    # The CLIs take turns, --repeats times, so that other work on the machine falls on all of
    # them alike; the fastest run of each counts (the one least disturbed), every run is kept.
    runs = {
        "faceledger": lambda: run_faceledger_cli(photos, args.cpus),
        # Separates what the pipeline gains from what the lighter detection settings gain.
        "faceledger_peer_settings": lambda: run_faceledger_cli(photos, args.cpus, PEER_SETTINGS),
        "faceledger_ray": lambda: run_faceledger_cli(photos, args.cpus, engine="ray"),
        "peer": lambda: run_peer_cli(photos, args.cpus),
    }
    wanted = {
        "faceledger": "faceledger",
        "faceledger_peer_settings": "same-settings",
        "faceledger_ray": "ray",
    }
    runs = {key: fn for key, fn in runs.items() if wanted.get(key, key) in parts}
    for repeat in range(args.repeats):
        for key, fn in runs.items():
            print(f"{key} CLI, run {repeat + 1}/{args.repeats} …", flush=True)
            result = fn() | {"load_average": os.getloadavg()[0]}
            best = report.get(key)
            if best is not None and result.get("status") == "measured":
                result["all_wall_s"] = [*best["all_wall_s"], result["wall_s"]]
                if best["wall_s"] < result["wall_s"]:
                    result = best | {"all_wall_s": result["all_wall_s"]}
            elif result.get("status") == "measured":
                result["all_wall_s"] = [result["wall_s"]]
            report[key] = result | rate(result)
    ours, peer = report.get("faceledger", {}), report.get("peer", {})
    if ours.get("status") == peer.get("status") == "measured":
        report["ratio_images_per_s"] = ours["images_per_s"] / peer["images_per_s"]
        report["ratio_faces_per_s"] = ours["faces_per_s"] / peer["faces_per_s"]
        # Same photos, so the images/s ratio of one repeat is the peer's wall over ours.
        report["same_run_ratios"] = [
            p / o for o, p in zip(ours["all_wall_s"], peer["all_wall_s"], strict=False)
        ]
        report["face_share_of_peer"] = ours["faces"] / peer["faces"]
    ray = report.get("faceledger_ray", {})
    if ours.get("status") == ray.get("status") == "measured":
        report["ray"] = {
            "ratio_images_per_s": ray["images_per_s"] / ours["images_per_s"],
            "same_run_ratios": [
                o / r for o, r in zip(ours["all_wall_s"], ray["all_wall_s"], strict=False)
            ],
            "overhead_fixed_s": ray["empty_run_s"] - ours["empty_run_s"],
            "overhead_per_photo_s": (
                (ray["wall_s"] - ray["empty_run_s"]) - (ours["wall_s"] - ours["empty_run_s"])
            ) / ours["images"],
        }
    same = report.get("faceledger_peer_settings", {})
    if same.get("status") == peer.get("status") == "measured":
        report["ratio_same_settings_images_per_s"] = same["images_per_s"] / peer["images_per_s"]
    vectors = None
    if "stages" in parts or "parity" in parts:
        print("stage profile …", flush=True)
        report["stages"], vectors = stage_profile(photos)
    if "stages" in parts and ours.get("status") == "measured":
        report["model_limit"] = model_limit(report["stages"], ours, args.cpus)
        report["sizing"] = sizing(ours, args.cpus)
    if "parity" in parts:
        print("peer vectors for parity …", flush=True)
        report["parity"] = parity(vectors, peer_vectors(photos, args.cpus))
    report["load_average_end"] = os.getloadavg()
    report["tables_md"] = tables(report)
    path = common.write_results("ingest", report)
    print("\n" + report["tables_md"])
    print(f"\nresults in {path}")


if __name__ == "__main__":
    sys.exit(main())
