"""What every Torus storage service stands on: timestamps, config, the server
runner, the backend client.  Small on purpose: a primitive lands here only
when several servers need it."""
