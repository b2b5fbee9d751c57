"""What the Avro test scripts print a decoded value as: JSON's own types,
with decimals as their text and bytes as base64, as the JSON formats write
them, so a test compares the two directly."""
import base64
import decimal


def plain(v):
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(v).decode()
    return v
