"""Deciding: receives a ``Job``; hands on whether it must run and why (a
``Reason``), by comparing the hashes of its files and its key (command,
params, code) with what the state store recorded when it last ran."""
