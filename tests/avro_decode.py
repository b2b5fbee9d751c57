"""Decodes Avro bodies with fastavro, an Avro library independent of the
daemon, and prints each as one JSON line (decimals as their text, bytes as
base64), so a test can compare them with the JSON formats' values.

usage: avro_decode.py SCHEMA_FILE BODY_FILE...
Each body file holds one Avro binary body (no Confluent header) written
with the schema in SCHEMA_FILE (its JSON text, as registered).
"""
import io
import json
import sys

import fastavro

from avro_plain import plain


def main():
    schema = fastavro.parse_schema(json.load(open(sys.argv[1])))
    for path in sys.argv[2:]:
        body = open(path, "rb").read()
        buf = io.BytesIO(body)
        record = fastavro.schemaless_reader(buf, schema)
        if buf.tell() != len(body):
            sys.exit(f"{path}: {len(body) - buf.tell()} bytes left after the record")
        print(json.dumps(plain(record)))


main()
