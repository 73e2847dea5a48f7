"""Drives a faceledger service with the real compreface-sdk; run in .venv-compreface.

Usage: client.py URL PORT SPEC.json. SPEC names the keys and images; every call's answer is
printed as one JSON object keyed by step, for tests/test_compreface.py to check. Nothing here
asserts: the test does, in faceledger's own venv.
"""

import json
import sys

from compreface import CompreFace


def main() -> None:
    """Run the steps and print what each answered."""
    url, port, spec_path = sys.argv[1:4]
    with open(spec_path) as handle:
        spec = json.load(handle)
    img = spec["images"]
    out = {}

    def step(name, call):
        try:
            out[name] = call()
        except Exception as exc:  # an SDK-side failure is an answer the test checks too
            out[name] = {"client_error": f"{type(exc).__name__}: {exc}"}

    def services(key):
        core = CompreFace(url, port)
        recognition = core.init_face_recognition(key)
        return (recognition, recognition.get_face_collection(), recognition.get_subjects(),
                core.init_face_detection(key), core.init_face_verification(key))

    rec, faces, subjects, detection, verification = services(spec["admin_key"])
    step("subject_add", lambda: subjects.add("alice"))
    step("subject_add_again", lambda: subjects.add("alice"))
    step("subjects_bare", lambda: subjects.list())
    step("add_alice", lambda: faces.add(img["alice"], "alice"))
    step("add_bob", lambda: faces.add(img["bob"], "bob"))
    step("add_blocked", lambda: faces.add(img["blocked"], "illinois",
                                          {"uploader_region": "US-IL"}))
    step("add_no_face", lambda: faces.add(img["no_face"], "nobody"))
    step("add_group", lambda: faces.add(img["group"], "somebody"))
    step("faces_list", lambda: faces.list())
    step("subjects_list", lambda: subjects.list())
    step("recognize", lambda: rec.recognize(img["probe"], {
        "limit": 0, "prediction_count": 5, "det_prob_threshold": 0.5,
        "face_plugins": "calculator,landmarks"}))
    step("recognize_age", lambda: rec.recognize(img["probe"], {"face_plugins": "age,gender"}))
    # A name known only from a blocked example is free to this admin: refusing would tell.
    step("subject_add_hidden", lambda: subjects.add("illinois"))
    step("verify_example", lambda: faces.verify(img["probe"], out["add_alice"]["image_id"]))
    step("detect", lambda: detection.detect(img["probe"], {"face_plugins": "landmarks"}))
    step("verify", lambda: verification.verify(img["alice"], img["probe"]))
    step("rename", lambda: subjects.update("bob", "robert"))
    step("subjects_renamed", lambda: subjects.list())
    step("delete_as_admin", lambda: faces.delete(out["add_alice"]["image_id"]))

    rec, faces, subjects, _, _ = services(spec["custodian_key"])
    step("faces_list_custodian", lambda: faces.list())
    step("subjects_custodian", lambda: subjects.list())
    step("delete_example", lambda: faces.delete(out["add_alice"]["image_id"]))
    step("delete_subject_examples", lambda: faces.delete_all("robert"))
    step("delete_subject", lambda: subjects.delete("illinois"))

    rec, faces, subjects, _, _ = services(spec["admin_key"])
    step("faces_after", lambda: faces.list())
    step("subjects_after", lambda: subjects.list())
    step("recognize_after", lambda: rec.recognize(img["probe"], {"prediction_count": 5}))
    step("bad_key", lambda: CompreFace(url, port).init_face_recognition("flk_0_nope")
         .get_subjects().list())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
