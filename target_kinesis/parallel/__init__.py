"""Mapping processes: the main process reads and sends; forked processes parse, validate, map
and encode, and the main process puts their answers back in input order."""
