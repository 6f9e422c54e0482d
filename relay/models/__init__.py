"""Wire structs (msgspec): they validate requests, shape responses and generate /openapi.json."""
