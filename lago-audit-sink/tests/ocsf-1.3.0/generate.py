"""Writes the JSON Schemas of the OCSF 1.3.0 classes the sink maps to, one file a class.

OCSF 1.3.0 is the newest version Amazon Security Lake's custom sources take. Run it in a
virtualenv with PyPI `ocsf-json-schema==1.2.0` installed (it ships the compiled OCSF schemas
from 1.0.0 to 1.8.0):

    python3 -m venv /tmp/ocsf && /tmp/ocsf/bin/pip install 'ocsf-json-schema==1.2.0'
    /tmp/ocsf/bin/python generate.py
"""

import json
import pathlib

from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

VERSION = "1.3.0"
CLASSES = [
    "account_change",
    "authentication",
    "entity_management",
    "http_activity",
    "user_access",
]

here = pathlib.Path(__file__).parent
schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(VERSION))
for name in CLASSES:
    text = json.dumps(schema.get_class_schema(name), sort_keys=True, separators=(",", ":"))
    (here / f"{name}.json").write_text(text + "\n")
