"""The release API: the HTTP layer over the release domain and release health."""
